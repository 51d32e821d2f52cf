// Force a different token (branching). A greedy generation first, with each step's top five; the
// learner picks a step and one of its other candidates, and the model continues from there
// (POST /api/experiments/branch, both times). The original and the branch are shown side by side,
// each token with its own probability: one different draw changes everything after it.
import { post } from "../lib/api.js";
import { clear, el, visibleText } from "../lib/dom.js";
import { probability } from "../lib/format.js";
import { words } from "../lib/words.js";
import { field, integer, panel } from "./experiments-panel.js";

const say = words("experiments");
const text = (t) => visibleText(t.token ?? t.text ?? "");

export function branchPanel(ctx) {
  const p = panel("xp-branch", say("branch_title"), say("branch_intro"));
  const n = field("xp-branch-n", say("new_tokens"), 10, { min: 1, max: 32 });
  const go = el("button", { type: "button", class: "primary", id: "xp-branch-run", text: say("generate") });
  p.controls.append(n.node, go);
  const steps = el("div", { class: "xp-steps", id: "xp-branch-steps", role: "group",
    "aria-label": say("branch_steps") });
  const alts = el("div", { class: "xp-alts", id: "xp-branch-alts" });
  const sides = el("div", { class: "xp-sides", id: "xp-branch-sides" });
  p.result.append(steps, alts, sides);
  let run0 = null; // the greedy generation: its length and steps

  // The plain run is a branch that forces the model's own first choice (rank 1) at the first step.
  const request = (count, step, force) => post("/api/experiments/branch", { ...ctx.request(), temperature: 0,
    top_k: 0, top_p: 1, min_p: 0, seed: 0, new_tokens: count, step, ...force });

  let fork = null; // a preset's fork, {step, rank}: run() makes it at once

  const generate = () => p.run(go, async () => {
    const count = integer(n.input, say("new_tokens_whole"));
    clear(steps); clear(alts); clear(sides);
    p.status.textContent = say("branch_generating");
    const planned = fork;
    fork = null;
    const d = await request(count, planned ? planned.step : 0, { rank: planned ? planned.rank : 1 });
    run0 = { count, steps: d.original.steps };
    p.status.textContent = say("branch_pick_step");
    run0.steps.forEach((s, i) => steps.append(el("button", { type: "button", class: "xp-step", "data-step": i,
      "data-id": s.id,
      "aria-label": say("branch_step_label", { step: i + 1, token: text(s) }), "aria-pressed": "false",
      onclick: () => pickStep(i) }, el("bdi", { text: text(s) }))));
    ctx.share("branch", { n: count });
    if (planned) { pickStep(planned.step); render(d); }
  });
  go.addEventListener("click", generate);

  // The candidates of step i, each a button that forces it there.
  function pickStep(i) {
    clear(alts);
    for (const b of steps.children) b.setAttribute("aria-pressed", String(Number(b.dataset.step) === i));
    const step = run0.steps[i];
    alts.append(el("p", { class: "note", text: say("branch_candidates", { step: i + 1 }) }));
    for (const row of step.top) {
      const chosen = row.id === step.id;
      alts.append(el("button", { type: "button", class: "xp-alt", "data-id": row.id, disabled: chosen,
        onclick: () => force(i, row) }, el("bdi", { text: text(row) }),
      el("small", { text: ` ${probability(row.model_prob)}${chosen ? say("branch_chosen") : ""}` })));
    }
  }

  function force(i, row) {
    return p.run(go, async () => {
      p.status.textContent = say("branch_running", { token: text(row), step: i + 1 });
      const d = await request(run0.count, i, { token: row.id });
      render(d);
    });
  }

  function render(d) {
    clear(sides);
    p.status.textContent = say("branch_done", { token: text(d.forced), step: d.step + 1 });
    const side = (title, run, forced) => el("div", { class: "xp-side" }, el("h4", { text: title }),
      el("p", { class: "xp-gen-text" }, el("bdi", { text: run.text })),
      el("ol", { class: "xp-gen-steps", start: 1 }, run.steps.map((s, k) => el("li", {
        class: k === d.step && forced ? "forced" : k > d.step && forced ? "after" : "" },
      el("bdi", { text: text(s) }), el("small", { text: ` ${probability(s.prob)}` })))));
    sides.append(side(say("branch_original"), d.original, false), side(say("branch_branch"), d.branch, true));
    Object.assign(p.node.dataset, { step: String(d.step), forced: String(d.forced.id) });
  }

  return {
    node: p.node, run: generate,
    set({ new_tokens: count = null, step = null, rank = null }) {
      if (count) n.input.value = String(count);
      fork = step !== null && rank ? { step, rank } : null;
    },
  };
}
