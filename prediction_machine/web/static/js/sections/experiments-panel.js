// The frame every experiment shares: a heading, the plain-words explanation, the controls, a status
// line, the errors the server gives (shown in the page, never a silent failure) and the result.
// Each experiment module fills one; experiments.js lays them out and hands them the shared prompt.
import { clear, codeLink, el, errorBox } from "../lib/dom.js";

// The function each panel runs on the server, opened by its "view code" link.
const CODE = {
  "xp-branch": "prediction_machine.experiments.branching.forced_run",
  "xp-lens": "prediction_machine.experiments.generation_lens.lens_over",
  "xp-ablation": "prediction_machine.experiments.ablation.ablate",
  "xp-scan": "prediction_machine.experiments.head_scan.scan_steps",
  "xp-patching": "prediction_machine.experiments.patching.patched_probs",
  "xp-attribution": "prediction_machine.experiments.attribution.attribute",
  "xp-steering": "prediction_machine.experiments.steering.steer",
};

// id: the panel's element id (xp-ablation); title, intro: the words; marks: attributes of the controls'
// row (the tour's stop name). Returns the parts to fill.
export function panel(id, title, intro, marks = {}) {
  const heading = el("h3", { id: `${id}-title`, text: title });
  const controls = el("div", { class: "row xp-controls", ...marks });
  const status = el("p", { class: "note xp-status", role: "status", "aria-live": "polite" });
  const errors = el("div", { class: "xp-errors" });
  const result = el("div", { class: "xp-result" });
  const node = el("div", { class: "xp-panel", id, role: "group", "aria-labelledby": `${id}-title` },
    heading, el("p", { class: "xp-intro" }, intro), controls, status, errors, result);
  if (CODE[id]) node.append(codeLink(CODE[id]));
  return {
    node, controls, status, errors, result,
    showError(error) {
      clear(errors).append(errorBox(error.message || String(error)));
      node.dataset.state = "error";
    },
    // Marks the panel busy while a request runs; the tests wait for data-state="done".
    async run(button, work) {
      clear(errors);
      node.dataset.state = "busy";
      button.disabled = true;
      try {
        await work();
        node.dataset.state = "done";
      } catch (error) {
        if (error.name === "AbortError") node.dataset.state = "cancelled";
        else this.showError(error);
      } finally {
        button.disabled = false;
      }
    },
  };
}

// A labelled number box: field("xp-ablate-layer", "Layer", 0, {min: 0}).
export function field(id, label, value, attrs = {}) {
  const input = el("input", { type: "number", id, value, step: 1, class: "xp-number", ...attrs });
  return { input, node: el("span", { class: "xp-field" }, el("label", { for: id, text: label }), input) };
}

// A labelled text area with one text per line (the steering lists, the two patching prompts).
export function textBox(id, label, value, rows = 2) {
  const input = el("textarea", { id, rows, spellcheck: "false", class: "xp-text" });
  input.value = value;
  return { input, node: el("div", { class: "xp-textbox" }, el("label", { for: id, text: label }), input) };
}

// An integer from a number box, or an error that names the field (before any request is sent).
export function integer(input, name) {
  const v = Number(input.value);
  if (input.value.trim() === "" || !Number.isInteger(v)) throw new Error(name);
  return v;
}
