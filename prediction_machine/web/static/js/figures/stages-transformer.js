// Stage 3, the transformer, through the logit lens: first a line, the probability (and rank) of the
// token this step finally chose after every layer; below it, each layer's own top guesses.
import { clear, el, svg, tokenChip, visibleText } from "../lib/dom.js";
import { clampIndex, mix, OKABE_ITO, onArrowKeys, paintHeatmap } from "../lib/draw.js";
import { term } from "../lib/glossary.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("inference");

const label = (token) => (token.partial ? token.text : visibleText(token.text));
const shortRank = (r) => (r <= 99 ? String(r) : "·"); // the table below the line has every rank

function bar(p) {
  const fill = el("span", { class: "fill" });
  fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  return el("span", { class: "bar", "aria-hidden": "true" }, fill);
}

// `chosenIsStep`: the line follows the token a step really took (true), or the model's final top guess.
export function transformer(panel, trace, chosenIsStep = false) {
  clear(panel);
  const t = trace.transformer;
  panel.append(
    el("p", { class: "note", text: say("traced_pass_over_n", { n: trace.tokens.length,
      ms: trace.ms.toFixed(0) }) }),
    lensLine(t.chosen, trace.model.vocab_size, chosenIsStep),
    earlyGuesses(t.lens),
    lensTable(t),
  );
  const thumbs = t.attention_thumbnails;
  if (thumbs) {
    const grid = el("div", { class: "thumbs", id: "attention-thumbs" });
    thumbs.forEach((m, layer) => grid.append(el("a", { href: "#attention", class: "thumb",
      title: say("layer_layer_attention_averaged", { layer }) },
      heat(m), el("span", { text: `L${layer}` }))));
    panel.append(el("p", { class: "note", text: say("attention_layer_averaged_over",
      { n_heads: trace.model.n_heads }) }),
      sinkNote(thumbs), grid);
  } else if (t.attention_thumbnails_note) {
    panel.append(el("p", { class: "note", text: say("attention_thumbnails_attention_thumbnails",
      { attention_thumbnails_note: t.attention_thumbnails_note }) }));
  }
}

// The chosen token's probability after each layer, as a line; its rank under each point.
function lensLine(chosen, vocab, chosenIsStep) {
  const narrow = document.documentElement.clientWidth < 600; // a phone: fewer rank labels, same line
  const L = chosen.probs.length, W = narrow ? 360 : 640, H = narrow ? 220 : 200, left = 56, right = 12,
    top = 14, bottom = 46;
  const every = narrow ? 3 : 1;
  const x = (l) => left + (L > 1 ? (l / (L - 1)) * (W - left - right) : 0);
  const y = (p) => top + (1 - p) * (H - top - bottom);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "lens-line", id: "lens-line", tabindex: 0,
    role: "img", "data-id": chosen.id,
    "aria-label": say("probability_text_after_l", { text: visibleText(chosen.token.text), L,
      value: format.probability(chosen.probs[0]), value2: format.probability(chosen.probs[L - 1]) }) });
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(p), y2: y(p), class: "grid" }),
      svg("text", { x: left - 6, y: y(p) + 4, class: "axis", "text-anchor": "end", text: `${p * 100}%` }));
  }
  chart.append(svg("polyline", { points: chosen.probs.map((p, l) => `${x(l)},${y(p)}`).join(" "),
    class: "path" }));
  const marker = svg("circle", { r: 7, class: "cursor", cx: x(L - 1), cy: y(chosen.probs[L - 1]) });
  chosen.probs.forEach((p, l) => {
    chart.append(svg("circle", { cx: x(l), cy: y(p), r: 3.5,
      class: `point ${chosen.ranks[l] === 1 ? "top" : ""}` },
      svg("title", { text: say("after_layer_l_p", { l, p: format.probability(p),
        value: format.int(chosen.ranks[l]) }) })));
    if (l % every === 0 || l === L - 1) chart.append(svg("text", { x: x(l), y: H - bottom + 16, class: "rank",
      "text-anchor": "middle", text: shortRank(chosen.ranks[l]) }));
  });
  chart.append(svg("text", { x: left - 14, y: H - bottom + 16, class: "axis", "text-anchor": "end",
    text: say("rank") }),
    svg("text", { x: (left + W) / 2, y: H - 6, class: "axis", "text-anchor": "middle",
      text: say("after_layer") }),
      marker);
  for (let l = 0; l < L; l += 5) chart.append(svg("text", { x: x(l), y: H - bottom + 30, class: "axis",
    "text-anchor": "middle", text: String(l) }));
  const readout = el("p", { class: "readout", id: "lens-readout", "aria-live": "polite" });
  const read = (l) => {
    marker.setAttribute("cx", x(l)); marker.setAttribute("cy", y(chosen.probs[l]));
    readout.textContent = say("after_layer_l_text", { l, text: visibleText(chosen.token.text),
      value: format.probability(chosen.probs[l]), value2: format.int(chosen.ranks[l]),
      vocab: format.int(vocab) });
  };
  let cursor = L - 1;
  read(cursor);
  onArrowKeys(chart, (dr, dc) => { cursor = clampIndex(cursor + dc - dr, L); read(cursor); });
  chart.addEventListener("mousemove", (e) => {
    const box = chart.getBoundingClientRect();
    const l = Math.round((((e.clientX - box.left) / box.width) * W - left) / ((W - left - right) / Math.max(1,
      L - 1)));
    cursor = clampIndex(l, L); read(cursor);
  });
  const first = chosen.ranks.findIndex((r, l) => r === 1 && chosen.ranks.slice(l).every((q) => q === 1));
  return el("figure", { class: "lens-figure" },
    el("figcaption", { class: "caption" }, say("the_lens"), term("logit lens"), say("how_sure_model"),
      tokenChip(chosen.token),
      chosenIsStep ? say("token_step_chose_after") : say("final_top_guess_after")),
    chart, readout,
    el("p", { class: "note", id: "lens-summary", text: first >= 0
      ? say("becomes_top_guess_after", { first })
      : say("not_top_guess_after", { value: chosen.ranks[L - 1] }) }));
}

// Why early layers guess "(" and ".": said in one sentence, naming the guesses this trace really made.
function earlyGuesses(lens) {
  const early = lens.slice(0, Math.max(1, Math.floor(lens.length / 3)));
  const tally = new Map();
  for (const g of early) tally.set(g.top[0].id, { token: g.top[0].token,
    n: (tally.get(g.top[0].id)?.n || 0) + 1 });
  const common = [...tally.values()].sort((a, b) => b.n - a.n).slice(0, 2);
  const names = new Intl.ListFormat(format.LANGUAGE).format(common.map((c) => `“${label(c.token)}”`));
  return el("p", { class: "note", id: "lens-early", text: say("first_n_layers_top", { n: early.length,
    names }) });
}

function lensTable(t) {
  const rows = t.lens.map((g) => el("tr", {},
    el("td", { class: "num", text: String(g.layer) }),
    el("td", {}, tokenChip(g.top[0].token, { showId: false })),
    el("td", { class: "bar-cell" }, bar(g.top[0].prob), el("span", { class: "num",
      text: format.probability(g.top[0].prob) })),
    el("td", { class: "num chosen-col",
      text: `${format.probability(t.chosen.probs[g.layer])} `
        + `(#${format.int(t.chosen.ranks[g.layer])})` }),
    el("td", { class: "runners" }, g.top.slice(1, 4).map((r) => el("span", { class: "runner",
      text: `${label(r.token)} ${format.probability(r.prob)}` }))),
  ));
  return el("details", { class: "lens-details", open: true },
    el("summary", { text: say("layers_own_top_guesses") }),
    el("div", { class: "lens-wrap", tabindex: 0, role: "region",
      "aria-label": say("layers_top_guesses_scrolls") }, el("table", { class: "lens", id: "logit-lens" },
      el("thead", {}, el("tr", {}, el("th", { class: "num", text: say("layer") }), el("th",
        { text: say("best_guess") }), el("th", { text: say("probability") }),
        el("th", { class: "num", text: say("token_rank", { token: label(t.chosen.token) }) }),
        el("th", { class: "runners", text: say("runnersup") }))),
      el("tbody", {}, rows))));
}

// How much attention lands on the very first token, averaged over layers and later tokens.
function sinkNote(thumbs) {
  let sum = 0, n = 0;
  for (const m of thumbs) for (let q = 1; q < m.length; q++) { sum += m[q][0]; n += 1; }
  if (!n) return null;
  const share = sum / n;
  return el("p", { class: "note", id: "attention-sink-note" }, say("average_share_later_tokens",
    { share: format.probability(share) }),
    ...(share > 0.3 ? [say("column_dark_most_layers"), term("attention sink"), "."] : ["."]));
}

// One layer's attention as a tiny picture; the square root makes weak attention visible.
function heat(matrix) {
  const T = matrix.length;
  const canvas = el("canvas");
  paintHeatmap(canvas, T, T, (q, k) => mix(Math.sqrt(matrix[q][k]), OKABE_ITO.blue));
  return canvas;
}
