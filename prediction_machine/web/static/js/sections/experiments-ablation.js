// Switch a part off (ablation): one attention head, all of a layer's heads, or one MLP is replaced by
// zeros for this prompt, and the next-token bars before and after are drawn side by side
// (POST /api/experiments/ablate). The head scan and the attribution's top heads come here to show
// one head's ablation in full.
import { post } from "../lib/api.js";
import { clear, el, visibleText } from "../lib/dom.js";
import { probability } from "../lib/format.js";
import { term } from "../lib/glossary.js";
import { fill, words } from "../lib/words.js";
import { beforeAfterBars } from "../figures/experiment-bars.js";
import { field, integer, panel } from "./experiments-panel.js";

const say = words("experiments");

// A change of probability in percentage points, with its sign: +3.1 or −42.0.
export const points = (before, after) => {
  const d = (after - before) * 100;
  return `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(1)}`;
};

// The part's name in words: "head 9.6", "all heads of layer 9", "the MLP of layer 9".
export function partName({ kind, layer, head }) {
  if (kind === "head") return say("part_head", { layer, head });
  return say(kind === "mlp" ? "part_mlp" : "part_layer_attn", { layer });
}

export function ablationPanel(ctx) {
  const p = panel("xp-ablation", say("ablation_title"),
    fill(say("ablation_intro"), { ablation: term(say("term_ablation")) }), { "data-tour-stop": "xp-ablate" });
  const kinds = { head: say("kind_head"), layer_attn: say("kind_layer_attn"), mlp: say("kind_mlp") };
  const kind = el("select", { id: "xp-ablate-kind" },
    ...Object.entries(kinds).map(([value, text]) => el("option", { value, text })));
  const layer = field("xp-ablate-layer", say("layer"), 0, { min: 0 });
  const head = field("xp-ablate-head", say("head"), 0, { min: 0 });
  const go = el("button", { type: "button", class: "primary", id: "xp-ablate-run", text: say("switch_off") });
  const kindField = el("span", { class: "xp-field" },
    el("label", { for: "xp-ablate-kind", text: say("part") }), kind);
  p.controls.append(kindField, layer.node, head.node, go);
  const showHead = () => { head.node.hidden = kind.value !== "head"; };
  kind.addEventListener("change", showHead);
  go.addEventListener("click", () => run());

  function part() {
    const out = { kind: kind.value, layer: integer(layer.input, say("layer_must_be_whole")) };
    if (out.kind === "head") out.head = integer(head.input, say("head_must_be_whole"));
    return out;
  }

  function run() {
    return p.run(go, async () => {
      const chosen = part();
      p.status.textContent = say("running_twice");
      const data = await post("/api/experiments/ablate", { ...ctx.request(), ...chosen });
      render(data);
      ctx.share("ablation", { kind: chosen.kind, layer: chosen.layer, head: chosen.head });
    });
  }

  function render(d) {
    clear(p.result);
    const target = d.target, before = d.target_prob.before, after = d.target_prob.after;
    const name = partName(d.part);
    p.status.textContent = "";
    p.result.append(
      el("p", { class: "xp-line", id: "xp-ablate-line" }, say("ablation_result", { part: name,
        token: visibleText(target.token), before: probability(before), after: probability(after),
        change: points(before, after) })),
      beforeAfterBars({ id: "xp-ablate-bars", before: d.before.top, after: d.after.top, target,
        width: p.result.clientWidth - 4,
        names: { title: say("ablation_bars_title", { part: name }), before: say("before"),
          after: say("after_off", { part: name }) } }),
      el("p", { class: "note" }, say(d.method === "zero" ? "method_zero" : "method_other",
        { method: d.method })));
    Object.assign(p.node.dataset, { before: String(before), after: String(after), target: String(target.id),
      kind: d.part.kind,
      layer: String(d.part.layer), head: d.part.head === undefined ? "" : String(d.part.head) });
  }

  // Fill the controls (from a preset, a shared link or another figure); a null value leaves one as it is.
  function set({ kind: k = null, layer: l = null, head: h = null }) {
    if (k) kind.value = k;
    if (l !== null && l !== undefined) layer.input.value = String(l);
    if (h !== null && h !== undefined) head.input.value = String(h);
    showHead();
  }

  return {
    node: p.node, set, run,
    // Another figure asks for one head's ablation in full (the scan's cell, a top head of the attribution).
    ablateHead(l, h) {
      set({ kind: "head", layer: l, head: h });
      p.node.scrollIntoView({ block: "start" });
      return run();
    },
  };
}
