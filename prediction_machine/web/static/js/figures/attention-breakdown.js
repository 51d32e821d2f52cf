// The attention explorer's deeper panel: one head, one query token, every step from scores to weights.
// Every number comes from POST /api/attention with a `breakdown` request (training/attention.py).
import { post } from "../lib/api.js";
import { clear, codeLink, el, errorBox, visibleText } from "../lib/dom.js";

export const AVG = "avg"; // the layer or head selector's "average" choice

// ---------------------------------------------------------------- the deeper panel

// How one head's weights come about for one query: q · k, the scale, the causal mask, softmax.
export async function breakdown(s, queryItem) {
  const box = s.ui.deep;
  clear(box);
  if (s.layer === AVG || s.head === AVG) {
    box.append(el("p", { class: "note", text: "Pick one layer and one head (not an average) to see how its weights are computed." }));
    return;
  }
  const item = queryItem();  // the selected word or token
  const q = item.tokens[item.tokens.length - 1]; // a word's last token: it has read the whole word
  const want = `${s.text}|${s.layer}|${s.head}|${q}`;
  box.dataset.want = want;
  box.append(el("p", { class: "note", text: "Computing…" }));
  let d;
  try {
    d = await post("/api/attention", {
      text: s.text, layers: [s.layer], heads: [s.head], view: "token", breakdown: { layer: s.layer, head: s.head, query: q },
    });
  } catch (e) {
    clear(box).append(errorBox(e.message));
    return;
  }
  if (box.dataset.want !== want) return;
  const b = d.breakdown;
  const tokens = d.tokens;
  clear(box);
  box.append(el("p", {},
    `Query: token ${q} “`, el("bdi", { text: visibleText(tokens[q].text) }),
    `” in layer ${b.layer}, head ${b.head} (its keys come from key/value head ${b.kv_head}, which several query heads share: grouped-query attention). ` +
    `Each score is the dot product of this token's query vector with a key vector (${b.head_dim} numbers each), ` +
    `divided by √${b.head_dim} = ${b.scale} so the scores do not grow with the vector length. Keys after the query are ` +
    "masked (set to −∞), and softmax turns the rest into weights that add up to 1."));
  const table = el("table", { class: "att-breakdown" },
    el("thead", {}, el("tr", {},
      el("th", { text: "key token" }), el("th", { class: "num", text: "q · k" }),
      el("th", { class: "num", text: `÷ ${b.scale}` }), el("th", { text: "mask", title: "keys after the query become −∞" }),
      el("th", { class: "num", text: "softmax" }))));
  const body = el("tbody");
  for (const k of b.keys) {
    body.append(el("tr", { class: k.allowed ? "" : "masked" },
      el("td", {}, el("bdi", { class: "token", text: visibleText(tokens[k.position].text) })),
      el("td", { class: "num", text: k.dot.toFixed(2) }),
      el("td", { class: "num", text: k.scaled.toFixed(3) }),
      el("td", { text: k.allowed ? "kept" : "−∞" }),
      el("td", { class: "num", text: k.allowed ? k.weight.toFixed(4) : "0" })));
  }
  table.append(body);
  box.append(el("div", { class: "att-scroll" }, table),
    el("p", { class: "note", text: `Rebuilt from the layer's input with the model's own weights; the largest difference from the weights the real forward pass recorded is ${b.max_abs_diff.toExponential(1)}.` }),
    codeLink("prediction_machine.training.attention.score_breakdown"),
    codeLink("prediction_machine.training.attention.queries_and_keys"));
}
