// Swap activations between two prompts (patching): the residual stream at one layer and position of
// the source run is copied into the target run, for every layer and position, and the heatmap shows
// how much of the source's answer comes back (POST /api/experiments/patch). This is the causal-tracing
// figure of the ROME paper. Positions must line up: prompts of different token counts are refused, and
// both tokenizations are shown so the learner sees why.
import { ApiError, post } from "../lib/api.js";
import { clear, el, tokenChip, visibleText } from "../lib/dom.js";
import { diverging } from "../lib/draw.js";
import { percent, probability } from "../lib/format.js";
import { term } from "../lib/glossary.js";
import { fill, words } from "../lib/words.js";
import { heatmap } from "../figures/experiment-heatmap.js";
import { panel, textBox } from "./experiments-panel.js";

const say = words("experiments");

// A token from the experiments' answers ({id, token}) as the page's token chip.
const chip = (t) => tokenChip({ id: t.id, text: t.token ?? t.text ?? "" });

function tokenRows(source, target) {
  return el("div", { class: "xp-tokenizations", id: "xp-patch-tokens" },
    el("p", { class: "xp-tok-row" }, el("span", { class: "xp-tok-label", text: say("patch_source_tokens",
      { n: source.length }) }), ...source.map(chip)),
    el("p", { class: "xp-tok-row" }, el("span", { class: "xp-tok-label", text: say("patch_target_tokens",
      { n: target.length }) }), ...target.map(chip)));
}

export function patchingPanel(ctx) {
  const p = panel("xp-patching", say("patch_title"), fill(say("patch_intro"),
    { patching: term(say("term_patching")), residual: term(say("term_residual_stream")) }));
  const source = textBox("xp-patch-source", say("patch_source"), "", 1);
  const target = textBox("xp-patch-target", say("patch_target"), "", 1);
  const go = el("button", { type: "button", class: "primary", id: "xp-patch-run", text: say("patch_run") });
  const form = el("div", { class: "xp-pair", "data-tour-stop": "xp-patch" }, source.node, target.node, go);
  p.controls.append(form);
  go.addEventListener("click", () => run());

  function run() {
    return p.run(go, async () => {
      const body = { source: source.input.value, target: target.input.value, raw: ctx.request().raw };
      p.status.textContent = say("patch_running");
      clear(p.result);
      let data;
      try {
        data = await post("/api/experiments/patch", body);
      } catch (error) {
        // Different token counts: say so, and show both tokenizations (nothing was patched).
        if (error instanceof ApiError && error.body?.source_tokens) {
          p.status.textContent = "";
          p.result.append(el("p", { class: "xp-line", id: "xp-patch-mismatch" }, say("patch_mismatch",
            { source: error.body.source_tokens.length, target: error.body.target_tokens.length })),
          tokenRows(error.body.source_tokens, error.body.target_tokens));
          p.node.dataset.mismatch = "1";
        }
        throw error;
      }
      render(data);
      ctx.share("patching", { source: body.source, target: body.target });
    });
  }

  function render(d) {
    const answer = visibleText(d.answer.token);
    const L = d.recovery.length, T = d.recovery[0].length;
    const width = Math.max(280, p.result.clientWidth || 600);
    const cellW = Math.max(12, Math.min(32, Math.floor((width - 60) / T)));
    p.status.textContent = "";
    p.node.dataset.mismatch = "0";
    p.result.append(tokenRows(d.source_tokens, d.target_tokens),
      el("p", { class: "xp-line", id: "xp-patch-line" }, say("patch_result", { answer,
        source: probability(d.source_prob), target: probability(d.target_prob) })));
    const rowName = (r) => (r === 0 ? say("embedding_short") : String(r - 1));
    const cut = (t) => { const v = visibleText(t.token); return v.length > 8 ? `${v.slice(0, 7)}…` : v; };
    const map = heatmap({
      id: "xp-patch-map", title: say("patch_map_title", { answer }), rows: L, cols: T,
      rowLabels: Array.from({ length: L }, (_, r) => rowName(r)), colLabels: d.target_tokens.map(cut),
      cell: { w: cellW, h: 14 }, colLabelH: 64,
      colour: (r, c) => diverging(d.recovery[r][c], 1),
      describe: (r, c) => say("patch_cell", { layer: rowName(r), token: visibleText(d.target_tokens[c].token),
        position: c, recovery: percent(d.recovery[r][c]), prob: probability(d.patched_prob[r][c]) }),
      data: (r, c) => ({ "data-recovery": d.recovery[r][c], "data-patched": d.patched_prob[r][c] }),
      caption: say("patch_caption"),
    });
    p.result.append(el("p", { class: "note" }, say("patch_axes")), map.root);
    Object.assign(p.node.dataset, { sourceProb: String(d.source_prob), targetProb: String(d.target_prob) });
  }

  return {
    node: p.node, run,
    set({ source: s = null, target: t = null }) {
      if (s !== null) source.input.value = s;
      if (t !== null) target.input.value = t;
    },
  };
}
