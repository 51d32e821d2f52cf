// The attention explorer's deeper panel: one head, one query token, every step from scores to weights.
// Every number comes from POST /api/attention with a `breakdown` request (training/attention.py).
import { post } from "../lib/api.js";
import { clear, codeLink, el, errorBox, visibleText } from "../lib/dom.js";
import { words } from "../lib/words.js";

const say = words("attention");

export const AVG = "avg"; // the layer or head selector's "average" choice

// ---------------------------------------------------------------- the deeper panel

// How one head's weights come about for one query: q · k, the scale, the causal mask, softmax.
export async function breakdown(s, queryItem) {
  const box = s.ui.deep;
  clear(box);
  if (s.layer === AVG || s.head === AVG) {
    box.append(el("p", { class: "note", text: say("pick_layer_head_not") }));
    return;
  }
  const item = queryItem();  // the selected word or token
  const q = item.tokens[item.tokens.length - 1]; // a word's last token: it has read the whole word
  const want = `${s.text}|${s.layer}|${s.head}|${q}`;
  box.dataset.want = want;
  box.append(el("p", { class: "note", text: say("computing") }));
  let d;
  try {
    d = await post("/api/attention", {
      text: s.text, layers: [s.layer], heads: [s.head], view: "token", breakdown: { layer: s.layer,
        head: s.head, query: q },
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
    say("query_token", { q: q + 1, n: tokens.length }), el("bdi", { text: visibleText(tokens[q].text) }),
    say("layer_layer_head_head", { layer: b.layer, head: b.head, kv_head: b.kv_head }) +
    say("score_dot_product_tokens", { head_dim: b.head_dim }) +
    say("divided_head_dim_scale", { head_dim: b.head_dim, scale: b.scale }) +
    say("masked_set_softmax_turns")));
  const table = el("table", { class: "att-breakdown" },
    el("thead", {}, el("tr", {},
      el("th", { text: say("key_token") }), el("th", { class: "num", text: say("q_k") }),
      el("th", { class: "num", text: `÷ ${b.scale}` }), el("th", { text: say("mask"),
        title: say("keys_after_query_become") }),
      el("th", { class: "num", text: say("softmax") }))));
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
    el("p", { class: "note", text: say("rebuilt_layers_input_models",
      { max_abs_diff: b.max_abs_diff.toExponential(1) }) }),
    codeLink("prediction_machine.training.attention.score_breakdown"),
    codeLink("prediction_machine.training.attention.queries_and_keys"));
}
