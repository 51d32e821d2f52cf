// The curriculum lab's shared pieces: the SVG line chart, and one live training view
// (stats, loss curve, learning-rate schedule, samples, controls) used by pre-training and fine-tuning.
import { post, stream } from "../lib/api.js";
import { clear, el, errorBox, svg, visibleProse } from "../lib/dom.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("curriculum");

const API = "/api/curriculum";

// ----------------------------------------------------------------------------- a small line chart

// series: [{name, points: [[x, y], ...], cls, dots}]; redraws the whole SVG (a few hundred points at most).
export function lineChart(node, series, { xLabel = "step", yLabel = "loss", xMax = null, marker = null,
  W = 560 } = {}) {
  const H = 220, L = 46, R = 10, T = 22, B = 30;
  const all = series.flatMap((s) => s.points);
  clear(node);
  if (series[0].points.length) { // the numbers behind the curve, for readers and tests
    node.dataset.first = series[0].points[0][1];
    node.dataset.last = series[0].points[series[0].points.length - 1][1];
  }
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": say("y_by_x", { y: yLabel, x: xLabel }) });
  node.append(root);
  if (!all.length) {
    root.setAttribute("data-empty", ""); // nothing to save yet (lib/export.js)
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty",
      text: say("waiting_first_step") }));
    return;
  }
  const x1 = Math.max(xMax || 0, ...all.map((p) => p[0]), 1);
  let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x) => L + (x / x1) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    root.append(svg("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "grid" }));
    root.append(svg("text", { x: L - 4, y: sy(y) + 4, "text-anchor": "end", class: "tick",
      text: y < 0.01 ? y.toExponential(1) : y.toFixed(2) }));
  }
  root.append(svg("text", { x: W - R, y: H - 6, "text-anchor": "end", class: "tick",
    text: `${xLabel} (0–${format.int(x1)})` }));
  root.append(svg("text", { x: 4, y: 12, class: "tick", text: yLabel }));
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map((p,
      i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    root.append(svg("path", { d, class: `line ${s.cls}` }));
    if (s.dots) for (const p of s.points) root.append(svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3,
      class: `dot ${s.cls}` }));
  }
  if (marker != null) root.append(svg("line", { x1: sx(marker), x2: sx(marker), y1: T, y2: H - B,
    class: "marker" }));
  const legend = el("p", { class: "legend" }, series.map((s) => el("span", { class: `key ${s.cls}`,
    text: s.name })));
  node.append(legend);
}

// ----------------------------------------------------------------------------- one live training view

// Shared by pre-training and fine-tuning: stats, loss curve, LR schedule, samples, controls.
export function trainingView({ kind, stats }) {
  const state = { job: null, abort: null, steps: [], evals: {}, schedule: [], step: 0, total: 0,
    drawQueued: false };
  const statNodes = {};
  const statRow = el("dl", { class: "stats" }, stats.map(([key, label]) => {
    statNodes[key] = el("dd", { text: format.DASH });
    return el("div", {}, el("dt", { text: label }), statNodes[key]);
  }));
  const loss = el("div", { class: "chart-box", "data-chart": `${kind}-loss` });
  const lr = el("div", { class: "chart-box small", "data-chart": `${kind}-lr` });
  // The list scrolls once it is long: a Tab stop with a name, so a keyboard can scroll it too.
  const samples = el("ol", { class: "samples", "aria-live": "polite", tabindex: 0,
    "aria-label": say("samples_fixed_prompt_newest") });
  const status = el("p", { class: "status", role: "status", text: "" });
  const pause = el("button", { type: "button", disabled: true, text: say("pause") });
  const stop = el("button", { type: "button", disabled: true, text: say("stop") });
  const controls = el("div", { class: "row" }, pause, stop);

  function draw() {
    state.drawQueued = false;
    const series = [{ name: say("training_loss_step"), cls: "train", points: state.steps }];
    for (const [name, pts] of Object.entries(state.evals)) {
      series.push({ name, cls: name.replace(/\W+/g, "-"), points: pts, dots: true });
    }
    lineChart(loss, series, { xMax: state.total });
    lineChart(lr, [{ name: say("learning_rate"), cls: "lr", points: state.schedule }],
      { yLabel: say("learning_rate"), marker: state.step, W: 300 });
  }
  const redraw = () => { if (!state.drawQueued) { state.drawQueued = true; requestAnimationFrame(draw); } };

  function reset() {
    state.steps = []; state.evals = {}; state.schedule = []; state.step = 0;
    clear(samples); for (const n of Object.values(statNodes)) n.textContent = format.DASH;
    draw();
  }

  function addEval(data) {
    for (const [key, label] of [["train_loss", say("training_loss_fixed_batches")], ["eval_loss",
      say(kind === "finetune" ? "eval_loss_heldout_questions" : "validation_loss_heldout_text")]]) {
      if (data[key] != null) (state.evals[label] ||= []).push([data.step, data[key]]);
    }
  }

  function addSample(data) { // newest first, the last 12
    samples.prepend(el("li", {}, el("span", { class: "sample-step",
      text: say("sample_step", { step: data.step }) }),
      el("pre", { class: "sample-text",
        text: visibleProse(kind === "finetune" ? `${data.prompt}\n→ ${data.text}` : data.prompt
          + data.text) })));
    while (samples.children.length > 12) samples.lastChild.remove();
  }

  function onEvent(name, data, handlers = {}) {
    if (name === "start") {
      state.total = data.config.steps;
      state.schedule = data.lr_schedule || [];
      if (statNodes.params) statNodes.params.textContent = format.int(data.parameters);
      if (data.history) { // a resumed run: draw what came before, its checks and samples too
        state.steps = data.history.step.map((s, i) => [s, data.history.loss[i]]);
        state.step = data.resumed_from || 0;
        for (const check of data.history.eval || []) addEval(check);
        for (const sample of (data.history.samples || []).slice(-12)) addSample(sample);
      }
    } else if (name === "step") {
      state.step = data.step;
      state.total = data.steps;
      state.steps.push([data.step, data.loss]);
      statNodes.step.textContent = `${data.step} / ${data.steps}`;
      statNodes.tokens.textContent = format.int(data.tokens);
      statNodes.seconds.textContent = format.seconds(data.seconds);
      statNodes.speed.textContent = format.int(data.tokens_per_s);
      statNodes.flops.textContent = format.si(data.flops);
      statNodes.loss.textContent = format.fixed(data.loss, 3);
    } else if (name === "eval") {
      addEval(data);
    } else if (name === "sample") {
      addSample(data);
    } else if (name === "queued") { // a classroom's jobs wait in line when every place is taken
      status.textContent = say("queued_position_places", { position: data.position, places: data.places });
    } else if (name === "paused") {
      pause.textContent = say("resume");
      status.textContent = say("paused_step_step_checkpoint", { step: data.step });
    } else if (name === "resumed") {
      pause.textContent = say("pause");
      status.textContent = say("training");
    } else if (name === "checkpoint") {
      status.textContent = say("checkpoint_saved_step_step", { step: data.step, status: data.status });
    } else if (name === "error") {
      status.replaceChildren(errorBox(data.error));
    }
    if (handlers[name]) handlers[name](data);
    redraw();
  }

  async function follow(job, handlers) {
    state.job = job;
    pause.disabled = stop.disabled = false;
    pause.textContent = say(job.status === "paused" ? "resume" : "pause");
    status.textContent = say("training");
    state.abort = new AbortController();
    try {
      await stream(`${API}/jobs/${job.id}/events`, { after: 0 }, (n, d) => onEvent(n, d, handlers),
        { signal: state.abort.signal });
    } catch (error) {
      if (error.name !== "AbortError") status.replaceChildren(errorBox(error.message));
    } finally {
      pause.disabled = stop.disabled = true;
      if (handlers.end) handlers.end();
    }
  }

  // A recorded run (lib/replay.js): its events drawn as a live job's are, with no job to pause or stop.
  function replay(events, handlers = {}) {
    reset();
    for (const [name, data] of events) onEvent(name, data, handlers);
  }

  pause.addEventListener("click", async () => {
    if (!state.job) return;
    const action = pause.textContent === say("pause") ? "pause" : "resume";
    pause.disabled = true;
    try { await post(`${API}/jobs/${state.job.id}/${action}`,
      {}); } catch (e) { status.replaceChildren(errorBox(e.message)); }
    pause.disabled = false;
  });
  stop.addEventListener("click", async () => {
    if (!state.job) return;
    stop.disabled = true;
    status.textContent = say("stopping_after_current_step");
    try { await post(`${API}/jobs/${state.job.id}/stop`,
      {}); } catch (e) { status.replaceChildren(errorBox(e.message)); }
  });

  const node = el("div", { class: "training-view" }, controls, status, statRow,
    el("div", { class: "charts" }, loss, lr), el("h5", { text: say("samples_fixed_prompt_newest") }),
      samples);
  draw();
  return { node, follow, reset, replay, state, status };
}
