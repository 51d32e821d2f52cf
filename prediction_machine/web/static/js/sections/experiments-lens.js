// Which layer decided (the whole-generation lens): for every generated token and every layer, the
// chosen token's probability and rank when the stream after that layer is read as if it were the last
// (POST /api/experiments/lens). Darker cells: likelier; the outlined cell of each row is the layer
// where the token became the top guess and stayed there.
import { post } from "../lib/api.js";
import { clear, el, visibleText } from "../lib/dom.js";
import { mix, OKABE_ITO } from "../lib/draw.js";
import { int, probability } from "../lib/format.js";
import { term } from "../lib/glossary.js";
import { fill, words } from "../lib/words.js";
import { heatmap } from "../figures/experiment-heatmap.js";
import { field, integer, panel } from "./experiments-panel.js";

const say = words("experiments");

export function lensPanel(ctx) {
  const p = panel("xp-lens", say("lens_title"),
    fill(say("lens_intro"), { lens: term(say("term_logit_lens")) }));
  const n = field("xp-lens-n", say("new_tokens"), 12, { min: 1, max: 32 });
  const go = el("button", { type: "button", class: "primary", id: "xp-lens-run", text: say("lens_run") });
  p.controls.append(n.node, go);
  go.addEventListener("click", () => run());

  function run() {
    return p.run(go, async () => {
      const count = integer(n.input, say("new_tokens_whole"));
      p.status.textContent = say("lens_running");
      const d = await post("/api/experiments/lens", { ...ctx.request(), new_tokens: count, temperature: 0,
        seed: 0 });
      render(d);
      ctx.share("lens", { n: count });
    });
  }

  function render(d) {
    clear(p.result);
    p.status.textContent = "";
    const T = d.tokens.length, L = d.prob[0]?.length ?? 0;
    const cut = (t) => { const v = visibleText(t.token); return v.length > 10 ? `${v.slice(0, 9)}…` : v; };
    const decided = (t) => (d.decided[t] === null || d.decided[t] === undefined ? null : d.decided[t]);
    const width = Math.max(280, p.result.clientWidth || 600);
    const map = heatmap({
      id: "xp-lens-map", title: say("lens_map_title"), rows: T, cols: L,
      rowLabels: d.tokens.map(cut),
      colLabels: Array.from({ length: L }, (_, l) => (l % 5 === 0 ? String(l) : "")),
      cell: { w: Math.max(8, Math.min(20, Math.floor((width - 90) / L))), h: 18 }, labelW: 86,
      colour: (t, l) => mix(d.prob[t][l], OKABE_ITO.blue),
      mark: (t, l) => decided(t) === l,
      describe: (t, l) => say("lens_cell", { token: visibleText(d.tokens[t].token), layer: l,
        rank: int(d.rank[t][l]), prob: probability(d.prob[t][l]) }), // rank 1 = the top guess
      data: (t, l) => ({ "data-prob": d.prob[t][l], "data-rank": d.rank[t][l] }),
      caption: say("lens_caption"),
    });
    const late = d.tokens.map((t, i) => ({ t, at: decided(i) })).filter((x) => x.at !== null)
      .sort((a, b) => b.at - a.at)[0];
    p.result.append(el("p", { class: "xp-line", id: "xp-lens-line" }, late
      ? say("lens_result", { n: T, token: visibleText(late.t.token), layer: late.at, layers: L })
      : say("lens_none", { n: T })), map.root);
    Object.assign(p.node.dataset, { tokens: String(T), layers: String(L) });
  }

  return {
    node: p.node, run,
    set({ new_tokens: count = null }) { if (count) n.input.value = String(count); },
  };
}
