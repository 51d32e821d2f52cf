// The inference walkthrough's state: the run so far and the rules that move it on. No drawing, no
// requests: inference.js asks the API and calls these; inference-render.js draws what they hold.
//
// One step, one story: each generated token keeps its whole record (the tokens it read, the
// prediction, the distribution under the settings it used, the random number, the token appended).

export function newState() {
  return {
    trace: null, steps: [], selected: null, pinned: false, controller: null, running: false, finish: null,
    tokens: null, run: null, showTemplate: false, traces: new Map(), traceWant: null, traceBusy: false,
    touched: false,
  };
}

// Back to before the first step (the prompt's tokens and the learner's settings stay).
export function resetState(state) {
  if (state.controller) state.controller.abort();
  Object.assign(state, { trace: null, steps: [], selected: null, pinned: false, finish: null, run: null,
    traces: new Map(), traceWant: null });
}

// Temperature 0 takes the top token: no random number is drawn. The threshold is the server's own
// (GET /api/settings, sampling.greedy_below), set by useServerSampling once it answers.
let greedyBelow = 0;
export const greedy = (p) => p.temperature === 0 || p.temperature < greedyBelow;
export function useServerSampling(sampling) {
  greedyBelow = sampling.greedy_below;
}
export const sameRun = (a, b) => a && b && JSON.stringify(a) === JSON.stringify(b);

// The token ids generated before step n: what a request continues from.
export const continuation = (state, n = state.steps.length) => state.steps.slice(0, n).map((s) => s.id);

// How many of the traced tokens are the prompt's (the rest were generated).
export function promptCount(state) {
  if (!state.trace) return 0;
  const generated = (state.trace.embedding.sources || []).filter((s) => s === "generated").length;
  return state.trace.tokens.length - generated;
}

// How the next step will draw: continuing the seeded run (the seed's next random number), or afresh.
// settings: the sliders and seed now, {temperature, top_k, top_p, min_p, seed}.
export function drawPlan(state, settings) {
  const n = state.steps.length;
  if (settings.seed === null || greedy(settings)) return { mode: "continue", seed: settings.seed, draws: 0 };
  if (!n || sameRun(state.run, settings)) return { mode: "replay", seed: settings.seed, draws: n };
  return { mode: "continue", seed: settings.seed + n, draws: 0 };
}

// One "step" event of /api/generate becomes the record of step `offset + data.index`. Returns false for
// a replayed step whose record is already kept. A replay that differs replaces everything after it.
export function recordStep(state, data, { offset, settings, plan, maxTokens }) {
  const index = offset + data.index;
  const old = state.steps[index];
  if (old && old.id === data.id) return false;
  // Which random number of which seed this step drew: the (data.index + 1)-th of the request's seed.
  const dice = plan.seed === null || greedy(settings) ? null : { seed: plan.seed, number: data.index + 1 };
  state.steps.length = index;
  state.steps.push({ ...data, index, settings, dice });
  if (data.finish && data.finish !== "length") state.finish = data.finish;
  if (data.finish === "length" && state.steps.length >= maxTokens) state.finish = "length";
  if (!state.pinned) state.selected = state.steps.length - 1;
  return true;
}

// The learner picked step i on the timeline; choosing the newest step follows new steps again.
export function selectStep(state, i) {
  state.selected = i;
  state.pinned = i !== state.steps.length - 1;
  state.touched = true;
}
