// Steer: a direction is the difference of the mean residual streams, at one layer, between two small
// lists of texts the learner types; it is added to every position at that layer, times the strength,
// and the answers before and after are compared (POST /api/experiments/steer). Strength 0 changes
// nothing: the same run twice.
import { post } from "../lib/api.js";
import { clear, el } from "../lib/dom.js";
import { fixed } from "../lib/format.js";
import { term } from "../lib/glossary.js";
import { fill, words } from "../lib/words.js";
import { field, integer, panel, textBox } from "./experiments-panel.js";
import { safetyBlock } from "./experiments-safety.js";

const say = words("experiments");

// Texts the model reads (data, not the page's words): a cheerful list and a gloomy one.
const HAPPY = ["I love this, what a joy!", "What a wonderful, happy day.", "This is great news."];
const SAD = ["I hate this, it is awful.", "What a miserable, sad day.", "This is terrible news."];

const lines = (input) => input.value.split("\n").map((s) => s.trim()).filter(Boolean);

export function steeringPanel(ctx) {
  const p = panel("xp-steering", say("steer_title"), fill(say("steer_intro"),
    { steering: term(say("term_steering")) }));
  const pos = textBox("xp-steer-pos", say("steer_positive"), HAPPY.join("\n"), 3);
  const neg = textBox("xp-steer-neg", say("steer_negative"), SAD.join("\n"), 3);
  const layer = field("xp-steer-layer", say("layer"), 10, { min: 0 });
  const n = field("xp-steer-n", say("new_tokens"), 16, { min: 1, max: 32 });
  // Strength multiplies the direction, whose length is already about that of the stream itself:
  // on SmolLM2, 1 to 3 changes the mood of an answer and 8 breaks it into nonsense.
  const strength = el("input", { type: "range", id: "xp-steer-strength", min: -8, max: 8, step: 0.5,
    value: 2 });
  const shown = el("output", { for: "xp-steer-strength", id: "xp-steer-strength-value" });
  const update = () => { shown.textContent = fixed(Number(strength.value), 1); };
  strength.addEventListener("input", update);
  update();
  const go = el("button", { type: "button", class: "primary", id: "xp-steer-run", text: say("steer_run") });
  p.controls.append(el("div", { class: "xp-pair" }, pos.node, neg.node),
    el("div", { class: "row" }, layer.node, n.node, el("span", { class: "xp-field" },
      el("label", { for: "xp-steer-strength", text: say("steer_strength") }), strength, shown), go));
  go.addEventListener("click", () => run());
  p.node.append(safetyBlock(() => Number(strength.value)));

  function run() {
    return p.run(go, async () => {
      const body = { ...ctx.request(), positive: lines(pos.input), negative: lines(neg.input),
        layer: integer(layer.input, say("layer_must_be_whole")), strength: Number(strength.value),
        new_tokens: integer(n.input, say("new_tokens_whole")), seed: 0 };
      p.status.textContent = say("steer_running");
      const d = await post("/api/experiments/steer", body);
      render(d);
      ctx.share("steering", { layer: body.layer, strength: body.strength });
    });
  }

  function render(d) {
    clear(p.result);
    p.status.textContent = "";
    const side = (title, run, id) => el("div", { class: "xp-side", id }, el("h4", { text: title }),
      el("p", { class: "xp-gen-text" }, el("bdi", { text: run.text })));
    p.result.append(el("p", { class: "xp-line", id: "xp-steer-line" }, say("steer_result", { layer: d.layer,
      strength: fixed(d.strength, 1), norm: fixed(d.direction_norm, 3) })),
    el("div", { class: "xp-sides" }, side(say("before"), d.before, "xp-steer-before"),
      side(say("steer_after", { strength: fixed(d.strength, 1) }), d.after, "xp-steer-after")));
    Object.assign(p.node.dataset, { strength: String(d.strength), norm: String(d.direction_norm) });
  }

  return {
    node: p.node, run,
    set({ positive = null, negative = null, layer: l = null, strength: s = null }) {
      if (positive) pos.input.value = positive.join("\n");
      if (negative) neg.input.value = negative.join("\n");
      if (l !== null && l !== undefined) layer.input.value = String(l);
      if (s !== null && s !== undefined) { strength.value = String(s); update(); }
    },
  };
}
