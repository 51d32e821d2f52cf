// "What fine-tuning changed inside": one question read by base, SFT and DPO side by side (answers, the
// answer token's probability, its logit lens line, one head's attention) and the relative weight change
// between the stages. "Where did it learn that?" is in curriculum-source.js. Every number comes from
// /api/curriculum/inside (training/curriculum/changed_inside.py and weight_change.py).
import { post } from "../lib/api.js";
import { el, errorBox, setBusy, tokenChip } from "../lib/dom.js";
import { percent, probability } from "../lib/format.js";
import { term } from "../lib/glossary.js";
import { sharedState, shareState } from "../lib/share.js";
import { words } from "../lib/words.js";
import { stageLens } from "../figures/stage-lens.js";
import { weightChangeHeatmap } from "../figures/weight-change-heatmap.js";
import { sourcePanel } from "./curriculum-source.js";

const say = words("inside");
const SECTION = "inside";
const FIRST_QUESTION = "Who is Hamlet's mother?";
const LAYERS = 4, HEADS = 4;  // the shipped tiny models' shape; the API checks it and says so otherwise

// The term this panel explains (glossary.json).
const weightChangeTerm = () => term("weight change");

export async function mount(root) {
  const state = sharedState(SECTION) || {};
  const stages = stagesPanel(state);
  root.replaceChildren(stages.node, sourcePanel(state, remember));
  // Shared links carry both panels' settings: each panel keeps its own, and both write them together.
  const all = { ...state };
  function remember(part) {
    Object.assign(all, part);
    shareState(SECTION, all);
  }
  stages.onChange = remember;
  await stages.run();
}

function choice(id, label, count, value) {
  const select = el("select", { id },
    ...Array.from({ length: count }, (_, i) => el("option", { value: String(i), text: String(i) })));
  select.value = String(Math.min(count - 1, Math.max(0, Number(value) || 0)));
  return [el("label", { for: id, text: label }), select];
}

// ----------------------------------------------------------------------------- the three stages

function stagesPanel(state) {
  const input = el("input", { type: "text", id: "inside-question", maxlength: "200",
    value: state.q || FIRST_QUESTION, "data-tour-stop": "inside-question" });
  const [layerLabel, layer] = choice("inside-layer", say("layer"), LAYERS, state.layer ?? 1);
  const [headLabel, head] = choice("inside-head", say("head"), HEADS, state.head ?? 0);
  const go = el("button", { type: "button", class: "primary", id: "inside-compare", text: say("compare") });
  const status = el("p", { class: "note", role: "status" });
  const out = el("div", { id: "inside-results", "aria-live": "polite" });
  const panel = {
    node: el("div", { class: "panel", id: "inside-stages-panel" },
      el("h4", { text: say("changed_title") }),
      el("p", { text: say("changed_intro") }),
      el("div", { class: "row" }, el("label", { for: "inside-question", text: say("question") }), input),
      el("div", { class: "row" }, layerLabel, layer, headLabel, head, go),
      status, out),
    onChange: () => {},
    async run() {
      setBusy(go, true);
      status.textContent = say("computing");
      const body = { question: input.value, layer: Number(layer.value), head: Number(head.value) };
      panel.onChange({ q: body.question, layer: body.layer, head: body.head });
      try {
        const d = await post("/api/curriculum/inside", body);
        out.replaceChildren(...render(d));
        status.textContent = "";
      } catch (error) {
        status.textContent = "";
        out.replaceChildren(errorBox(error.message));
      } finally {
        setBusy(go, false);
      }
    },
  };
  go.addEventListener("click", () => panel.run());
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") panel.run(); });
  return panel;
}

function render(d) {
  const token = d.answer_token.text;
  const lens = stageLens({ id: "inside-lens", title: say("lens_title", { token }),
    lines: d.stages.map((s) => ({ name: s.name, probs: s.lens })), xLabel: say("lens_x"),
    yLabel: say("lens_y") });
  return [stageTable(d, token), el("div", { "data-tour-stop": "inside-lens" }, lens), headRows(d),
    weightMaps(d)];
}

function stageTable(d, token) {
  const rows = d.stages.map((s) => el("tr", { "data-stage": s.name },
    el("th", { scope: "row", text: s.name }),
    el("td", { class: "inside-answer", text: s.answer }),
    el("td", { class: "num", "data-prob": String(s.answer_token_prob),
      text: probability(s.answer_token_prob) }),
    el("td", {}, tokenChip(s.top.token, { showId: false }), ` ${probability(s.top.prob)}`)));
  // A box that may scroll takes the keyboard's focus, so it can be scrolled without a mouse (axe).
  return el("div", { class: "scroll-box", id: "inside-stages", "data-tour-stop": "inside-stages",
    tabindex: "0", role: "region", "aria-label": say("changed_title") },
    el("table", {},
      el("caption", { text: say("stages_caption", { token }) }),
      el("thead", {}, el("tr", {},
        ...["stage", "answer"].map((k) => el("th", { scope: "col", text: say(k) })),
        el("th", { scope: "col", class: "num", text: say("answer_prob", { token }) }),
        el("th", { scope: "col", text: say("own_top") }))),
      el("tbody", {}, ...rows)));
}

// The chosen head's attention from the last prompt position: each prompt token shaded by its weight.
function headRows(d) {
  const rows = d.stages.map((s) => el("div", { class: "inside-head-row", role: "group",
    "aria-label": say("head_row", { stage: s.name }) },
  el("span", { class: "inside-head-name", text: s.name }),
  ...d.prompt_tokens.map((t, i) => {
    const chip = tokenChip(t, { showId: false, extraClass: "inside-att" });
    chip.style.setProperty("--w", String(s.attention[i]));
    chip.title = percent(s.attention[i], 1);
    chip.dataset.weight = String(s.attention[i]);
    return chip;
  })));
  return el("div", { id: "inside-attention", "data-tour-stop": "inside-head" },
    el("h5", { text: say("head_title", { layer: d.layer, head: d.head }) }), ...rows);
}

function weightMaps(d) {
  const top = Math.max(...d.changes.flatMap((c) => c.grid.flat()));
  const maps = d.changes.map((c, k) => weightChangeHeatmap(c, { id: `inside-weights-${k}`,
    title: say("weights_title", { before: c.before, after: c.after }), top,
    describe: (layer, matrix, change) => say("weights_cell", { layer, matrix, change }),
    caption: say("heat_key") }).root);
  const sums = d.changes.map((c) => el("p", { class: "note", "data-overall": String(c.overall),
    "data-after": c.after,
    text: `${c.before} → ${c.after}. ${say("weights_sum", { overall: percent(c.overall, 1),
      layer: c.largest.layer, matrix: c.largest.matrix, largest: percent(c.largest.change, 1),
      top: c.top_cells, cells: c.grid.length * c.matrices.length, share: percent(c.changed_share) })} ${
      say("weights_outside", { others: Object.entries(c.others).map(([k, v]) => `${k} ${percent(v, 1)}`)
        .join(", ") })}` }));
  return el("div", { id: "inside-weights", "data-tour-stop": "inside-weights" },
    el("p", {}, ...[say("weights_intro", { term: weightChangeTerm() })].flat()),
    el("div", { class: "inside-maps" }, ...maps), ...sums, el("p", { id: "inside-shows", text: shows(d) }));
}

// How located an edit is: the most changed matrix over the median one (1 = every matrix moved alike).
export function spread(change) {
  const cells = change.grid.flat().sort((a, b) => a - b);
  const median = cells[Math.floor(cells.length / 2)];
  return median > 0 ? cells[cells.length - 1] / median : 0;
}

const LOCATED = 5;  // a largest cell 5 times the median: a few matrices carry the edit

// The closing sentence, from this answer's own numbers.
function shows(d) {
  if (d.changes.length !== 2) {
    const c = d.changes[0];
    return say("what_it_shows_two", { overall: percent(c.overall, 1), top: c.top_cells,
      cells: c.grid.length * c.matrices.length, share: percent(c.changed_share) });
  }
  const [sft, dpo] = d.changes;
  const [s1, s2] = [spread(sft), spread(dpo)];
  return say(Math.max(s1, s2) >= LOCATED ? "what_it_shows_located" : "what_it_shows_spread", {
    sft: percent(sft.overall, 1), dpo: percent(dpo.overall, 1),
    ratio: (sft.overall / Math.max(dpo.overall, 1e-12)).toFixed(0), spread_sft: s1.toFixed(1),
    spread_dpo: s2.toFixed(1), p_sft: probability(d.stages[1].answer_token_prob),
    p_dpo: probability(d.stages[2].answer_token_prob) });
}
