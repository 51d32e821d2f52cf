// Steering the tiny chat model with its own preferences: the direction from the rejected answers of the
// preference pairs to the chosen ones, added or removed, and the safety table measured again each way
// (POST /api/experiments/steer/safety): how often it refuses harmful questions, and harmless ones.
import { post } from "../lib/api.js";
import { clear, el } from "../lib/dom.js";
import { fixed, percent } from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("experiments");

// strength(): the steering slider's value. Returns the block to append under the steering panel.
export function safetyBlock(strength) {
  const go = el("button", { type: "button", id: "xp-safety-run", text: say("safety_run") });
  const status = el("p", { class: "note", role: "status" });
  const out = el("div", { id: "xp-safety" });
  const node = el("div", { class: "xp-safety-box" }, el("h4", { text: say("safety_title") }),
    el("p", { text: say("safety_intro") }), go, status, out);
  go.addEventListener("click", async () => {
    go.disabled = true;
    clear(out);
    status.textContent = say("safety_running");
    try {
      const d = await post("/api/experiments/steer/safety", { strength: strength() });
      status.textContent = say("safety_direction", { model: d.model, layer: d.layer,
        norm: fixed(d.direction_norm, 3) });
      const names = { added: say("safety_added"), removed: say("safety_removed"), off: say("safety_off") };
      const row = (r) => el("tr", {}, el("td", { text: names[r.steering] ?? r.steering }),
        el("td", { class: "num", text: fixed(r.strength, 1) }),
        el("td", { class: "num", text: percent(r.refusal_rate) }),
        el("td", { class: "num", text: percent(r.over_refusal_rate) }));
      out.append(el("table", { id: "xp-safety-table" },
        el("thead", {}, el("tr", {}, el("th", { text: say("safety_steering") }),
          el("th", { class: "num", text: say("steer_strength") }),
          el("th", { class: "num", text: say("safety_refusal") }),
          el("th", { class: "num", text: say("safety_over_refusal") }))),
        el("tbody", {}, d.rows.map(row))));
    } catch (error) {
      status.textContent = "";
      out.append(el("p", { class: "error", role: "alert", text: error.message }));
    } finally {
      go.disabled = false;
    }
  });
  return node;
}
