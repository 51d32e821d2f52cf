// Circuits forming while you train: a scrubber under the pre-training loss curve moves one snapshot
// at a time through a run (GET /api/curriculum/snapshots/{name}), or through the live run's
// `snapshot` events, and redraws the layer × head heatmaps of induction and previous-token scores,
// the picked head's attention on the probe text and the logit lens at the probe's last token.
import { get } from "../lib/api.js";
import { term } from "../lib/glossary.js";
import { clear, codeLink, el, errorBox, visibleText } from "../lib/dom.js";
import * as format from "../lib/format.js";
import { attentionPattern, lossCurve, scoreHeatmap } from "../figures/induction-heatmap.js";
import { linkValue, shareCurriculum } from "./curriculum-share.js";
import { words } from "../lib/words.js";

const say = words("curriculum");
const API = "/api/curriculum/snapshots";
const LIVE = "live";

export function circuitsPanel() {
  const state = { doc: null, index: 0, head: { layer: 0, head: 0 }, live: null };
  const record = el("select", { id: "cur-circ-record" });
  const scrub = el("input", { id: "cur-circ-step", "data-tour-stop": "cur-circ-step", type: "range", min: 0,
    max: 0, value: 0, step: 1, "aria-label": say("circ_scrubber") });
  const stepNote = el("output", { for: "cur-circ-step", class: "circ-step", "aria-live": "polite" });
  const curve = el("div", { class: "circ-curve-box" });
  const finding = el("p", { class: "circ-finding" });
  const maps = el("div", { class: "circ-maps" });
  const pattern = el("div", { class: "circ-pattern" });
  const lens = el("ol", { class: "circ-lens", "aria-label": say("circ_lens_title") });
  const error = el("div");
  const node = el("div", { class: "panel", id: "cur-circ", "data-tour-stop": "cur-circ" },
    el("h4", { text: say("circ_title") }),
    el("p", {}, ...[say("circ_intro", { induction_head: term("induction head") })].flat()),
    el("div", { class: "row" }, el("label", { for: "cur-circ-record", text: say("circ_record") }), record),
    error, finding, curve,
    el("div", { class: "row circ-scrub" }, el("label", { for: "cur-circ-step", text: say("circ_step") }),
      scrub, stepNote),
    maps, el("div", { class: "circ-detail" }, pattern, el("div", { class: "circ-lens-box" },
      el("h5", { text: say("circ_lens_title") }), lens)),
    codeLink("prediction_machine.training.curriculum.induction.induction_scores"),
    codeLink("prediction_machine.training.curriculum.snapshots.measure"));

  // ------------------------------------------------------------- drawing one snapshot
  function draw() {
    const d = state.doc;
    if (!d || !d.snapshots.length) return;
    const snap = d.snapshots[state.index];
    node.dataset.step = snap.step;
    scrub.max = d.snapshots.length - 1;
    scrub.value = state.index;
    stepNote.textContent = say("circ_step_value", { step: format.int(snap.step),
      loss: snap.loss === null ? "–" : format.fixed(snap.loss, 3) });
    const formedWords = d.formed ? say("circ_formed_mark", { step: format.int(d.formed.step) }) : "";
    curve.replaceChildren(lossCurve({ id: "circ-loss", curve: d.curve?.length ? d.curve
      : d.snapshots.filter((s) => s.loss !== null).map((s) => [s.step, s.loss]),
    step: snap.step, formed: d.formed, labels: { title: say("circ_curve_title"), formed: formedWords } }));
    finding.textContent = d.formed
      ? say("circ_formed", { step: format.int(d.formed.step), loss: format.fixed(d.formed.loss, 3),
        head: `L${d.formed.layer}H${d.formed.head}`, score: format.fixed(d.formed.score, 2),
        threshold: d.threshold })
      : say("circ_not_formed", { threshold: d.threshold });
    const pick = (layer, head) => { state.head = { layer, head }; draw(); shareCurriculum(); };
    const describe = (kind) => (l, h, v) => say("circ_cell", { kind, head: `L${l}H${h}`,
      score: format.fixed(v, 3) });
    maps.replaceChildren(
      scoreHeatmap({ id: "circ-induction", title: say("circ_induction_title"),
        caption: say("circ_induction_caption", { threshold: d.threshold }), scores: snap.induction,
        hue: "blue", picked: state.head, onPick: pick, describe: describe(say("circ_induction")) }),
      scoreHeatmap({ id: "circ-previous", title: say("circ_previous_title"),
        caption: say("circ_previous_caption"), scores: snap.previous, hue: "orange", picked: state.head,
        onPick: pick, describe: describe(say("circ_previous")) }));
    maps.dataset.step = snap.step;
    const { layer, head } = state.head;
    node.dataset.head = `L${layer}H${head}`;
    const tokens = d.probe?.tokens || d.tokens || [];
    pattern.replaceChildren(attentionPattern({ id: "circ-attention",
      title: say("circ_attention_title", { head: `L${layer}H${head}` }),
      caption: say("circ_attention_caption"), rows: snap.attention[layer][head], tokens,
      describe: (q, k, w) => say("circ_attention_cell", { from: visibleText(tokens[q]),
        to: visibleText(tokens[k]), weight: format.percent(w, 0) }) }));
    clear(lens);
    for (const g of snap.lens) {
      lens.append(el("li", { "data-layer": g.layer },
        el("span", { class: "circ-layer", text: `L${g.layer}` }),
        ...g.tokens.map((t, i) => el("span", { class: "circ-guess" },
          el("code", { text: visibleText(t) }),
          el("small", { text: ` ${format.percent(g.probs[i], 0)}` })))));
    }
  }

  function show(doc, index = doc.snapshots.length - 1) {
    state.doc = doc;
    state.index = Math.max(0, Math.min(index, doc.snapshots.length - 1));
    const L = doc.snapshots[0]?.induction.length || 1;
    const H = doc.snapshots[0]?.induction[0].length || 1;
    state.head = { layer: Math.min(state.head.layer, L - 1), head: Math.min(state.head.head, H - 1) };
    draw();
  }

  scrub.addEventListener("input", () => { state.index = Number(scrub.value); draw(); });
  scrub.addEventListener("change", shareCurriculum);

  async function load(name, index) {
    clear(error);
    if (name === LIVE) { if (state.live) show(state.live); return; }
    try {
      const doc = await get(`${API}/${encodeURIComponent(name)}`);
      node.dataset.record = name;
      show(doc, index);
    } catch (e) {
      error.append(errorBox(e.message));
    }
  }
  record.addEventListener("change", () => { load(record.value); shareCurriculum(); });

  // ------------------------------------------------------------- the shipped records, and a shared link
  get(API).then(({ shipped }) => {
    for (const name of shipped) record.append(el("option", { value: name, text: name }));
    const wanted = linkValue("circ_record", shipped[0], shipped);
    const head = /^L(\d)H(\d)$/.exec(linkValue("circ_head", "L0H0"));
    if (head) state.head = { layer: Number(head[1]), head: Number(head[2]) };
    if (wanted) { record.value = wanted; load(wanted, Number(linkValue("circ_step", "-1")) >= 0
      ? Number(linkValue("circ_step", "0")) : undefined); }
  }).catch((e) => error.append(errorBox(e.message)));

  // ------------------------------------------------------------- the learner's own pre-training runs
  function setRuns(runs) {
    for (const r of runs.filter((r) => r.kind === "pretrain" && !r.shipped && r.status !== "running")) {
      if (![...record.options].some((o) => o.value === r.id)) {
        record.append(el("option", { value: r.id, text: say("circ_my_run", { id: r.id, step: r.step }) }));
      }
    }
  }

  // ------------------------------------------------------------- a live run: its snapshot events
  const live = {
    reset() { state.live = null; },
    snapshot(s) {
      if (!state.live) {
        state.live = { tokens: s.tokens, threshold: s.threshold, formed: null, snapshots: [], curve: [] };
        if (![...record.options].some((o) => o.value === LIVE)) {
          record.prepend(el("option", { value: LIVE, text: say("circ_live_run") }));
        }
        record.value = LIVE;
      }
      state.live.snapshots.push(s);
      const best = Math.max(...s.induction.flat());
      if (!state.live.formed && best >= s.threshold) {
        const flat = s.induction.flat();
        const at = flat.indexOf(best);
        const H = s.induction[0].length;
        state.live.formed = { step: s.step, loss: s.loss, score: best, layer: Math.floor(at / H),
          head: at % H };
      }
      if (record.value === LIVE) show(state.live);
    },
    step(d) { if (state.live) state.live.curve.push([d.step, d.loss]); },
  };
  node.dataset.ready = "1";
  return { node, live, setRuns };
}
