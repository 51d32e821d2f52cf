// Why this token (direct logit attribution): the chosen token's logit split into parts that add up to
// it exactly: the embedding, each layer's attention (and each head in it) and each layer's MLP
// (POST /api/experiments/attribute). Each part goes through the final RMSNorm with the scale the real
// run computed, frozen, which is what makes the sum exact; the panel says so in plain words.
import { post } from "../lib/api.js";
import { clear, el, visibleText } from "../lib/dom.js";
import { fixed } from "../lib/format.js";
import { term } from "../lib/glossary.js";
import { fill, words } from "../lib/words.js";
import { attributionBars } from "../figures/experiment-attribution.js";
import { partName } from "./experiments-ablation.js";
import { panel } from "./experiments-panel.js";

const say = words("experiments");
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

export function attributionPanel(ctx) {
  const p = panel("xp-attribution", say("attr_title"), fill(say("attr_intro"),
    { attribution: term(say("term_attribution")) }), { "data-tour-stop": "xp-attr" });
  const go = el("button", { type: "button", class: "primary", id: "xp-attr-run", text: say("attr_run") });
  p.controls.append(go);
  go.addEventListener("click", () => run());

  function run() {
    return p.run(go, async () => {
      p.status.textContent = say("attr_running");
      const data = await post("/api/experiments/attribute", ctx.request());
      render(data);
      ctx.share("attribution", {});
    });
  }

  function render(d) {
    clear(p.result);
    p.status.textContent = "";
    const token = visibleText(d.token.token);
    const attn = sum(d.layers.map((l) => l.attn)), mlp = sum(d.layers.map((l) => l.mlp));
    p.result.append(
      el("p", { class: "xp-line", id: "xp-attr-token" },
        say("attr_token", { token, logit: fixed(d.logit, 4) })),
      attributionBars({ id: "xp-attr-bars", data: d, names: { title: say("attr_bars_title", { token }),
        attention: say("attention"), mlp: say("mlp"), embed: say("embedding_short"),
        layer: (n) => String(n) } }),
      el("p", { class: "xp-line xp-sum", id: "xp-attr-sum" }, say("attr_sum", { embed: fixed(d.embed, 4),
        attn: fixed(attn, 4), mlp: fixed(mlp, 4), sum: fixed(d.sum, 4), logit: fixed(d.logit, 4) })),
      el("p", { class: "note", id: "xp-attr-norm" }, fill(say("attr_norm", { scale: fixed(d.final_norm_scale,
        4) }), { residual: term(say("term_residual_stream")) })),
      topHeads(d));
    Object.assign(p.node.dataset, { sum: String(d.sum), logit: String(d.logit), embed: String(d.embed),
      attn: String(attn), mlp: String(mlp), token: String(d.token.id) });
  }

  // The heads with the largest parts, each with a button that switches it off in the ablation panel.
  function topHeads(d) {
    const rows = d.top_heads.map((h) => {
      const name = partName({ kind: "head", layer: h.layer, head: h.head });
      return el("tr", { "data-layer": h.layer, "data-head": h.head, "data-value": h.value },
        el("td", { text: name }), el("td", { class: "num", text: fixed(h.value, 4) }),
        el("td", {}, el("button", { type: "button", class: "xp-small", text: say("switch_it_off"),
          "aria-label": say("switch_off_part", { part: name }),
          onclick: () => ctx.panels.ablation.ablateHead(h.layer, h.head) })));
    });
    return el("div", { class: "xp-top-heads" }, el("h4", { text: say("attr_top_heads") }),
      el("table", { id: "xp-attr-heads" }, el("thead", {}, el("tr", {}, el("th", { text: say("head") }),
        el("th", { class: "num", text: say("attr_part") }), el("th", { text: say("try_it") }))),
      el("tbody", {}, rows)));
  }

  return { node: p.node, run };
}
