// "Experiment: ask what if": six experiments on the learner's prompt, each a real re-run of the model
// through the hooks on the textbook Transformer (the /api/experiments/... routes). This module holds
// what they share: the prompt, the one-click presets (GET /api/experiments/presets, each with what to
// look for and the result measured on the shipped model) and the shared link. One module each:
//   experiments-branch.js       force another token at one step; the original and the branch
//   experiments-lens.js         which layer decided each generated token
//   experiments-ablation.js     switch a head, a layer's heads or an MLP off
//   experiments-scan.js         switch every head off in turn: the layer × head heatmap
//   experiments-patching.js     copy the residual stream from one prompt's run into another's
//   experiments-attribution.js  split the chosen token's logit into parts that add up to it
//   experiments-steering.js     add a direction made from two lists of texts
import { get } from "../lib/api.js";
import { clear, el, errorBox } from "../lib/dom.js";
import { sharedState, shareState } from "../lib/share.js";
import { words } from "../lib/words.js";
import { ablationPanel } from "./experiments-ablation.js";
import { attributionPanel } from "./experiments-attribution.js";
import { branchPanel } from "./experiments-branch.js";
import { lensPanel } from "./experiments-lens.js";
import { patchingPanel } from "./experiments-patching.js";
import { scanPanel } from "./experiments-scan.js";
import { steeringPanel } from "./experiments-steering.js";

const say = words("experiments");

// The presets file names each experiment; these are the panels that run them.
const PANEL_OF = { ablate: "ablation", ablation: "ablation", scan: "scan", head_scan: "scan",
  patch: "patching", patching: "patching", attribute: "attribution", attribution: "attribution",
  branch: "branch", lens: "lens", generation_lens: "lens", steer: "steering", steering: "steering" };

export function mount(root) {
  clear(root);
  root.classList.add("xp");

  // ---------------------------------------------------------------- the prompt every experiment uses
  const prompt = el("textarea", { id: "xp-prompt", "data-tour-stop": "xp-prompt", rows: 2, maxlength: 4000,
    spellcheck: "false" });
  const raw = el("input", { type: "checkbox", id: "xp-raw", checked: true });
  const copy = el("button", { type: "button", id: "xp-copy-prompt", text: say("use_walkthrough_prompt") });
  copy.addEventListener("click", () => {
    const theirs = document.getElementById("prompt");
    if (theirs) prompt.value = theirs.value;
    const chat = document.getElementById("chat-toggle");
    if (chat) raw.checked = !chat.checked;
  });
  const ctx = {
    panels: {},
    request: () => ({ prompt: prompt.value, raw: raw.checked }),
    // The view in the address bar: the prompt, and the experiment last run with its settings.
    share: (run, params) => shareState("experiments", { prompt: prompt.value, raw: raw.checked ? 1 : 0, run,
      ...params }),
  };

  // ---------------------------------------------------------------- presets
  const presets = el("div", { class: "xp-presets", id: "xp-presets", "data-tour-stop": "xp-presets",
    role: "group", "aria-label": say("presets") }, el("p", { class: "note", text: say("presets_loading") }));
  const presetNote = el("div", { class: "xp-preset-note", id: "xp-preset-note", "aria-live": "polite" });

  root.append(
    el("p", {}, say("intro_1")), el("p", {}, say("intro_2")),
    el("div", { class: "xp-prompt" }, el("label", { for: "xp-prompt", text: say("prompt") }), prompt,
      el("div", { class: "row" }, el("label", { class: "xp-check" }, raw, say("raw")), copy)),
    el("h3", { text: say("presets") }), presets, presetNote);

  // ---------------------------------------------------------------- the six experiments
  ctx.panels.branch = branchPanel(ctx);
  ctx.panels.lens = lensPanel(ctx);
  ctx.panels.ablation = ablationPanel(ctx);
  ctx.panels.scan = scanPanel(ctx);
  ctx.panels.patching = patchingPanel(ctx);
  ctx.panels.attribution = attributionPanel(ctx);
  ctx.panels.steering = steeringPanel(ctx);
  root.append(...Object.values(ctx.panels).map((p) => p.node));

  // A preset fills the prompt and its panel's settings, says what to look for, and runs the experiment.
  function usePreset(preset) {
    const name = PANEL_OF[preset.experiment];
    const target = ctx.panels[name];
    if (!target) return;
    if (preset.prompt) prompt.value = preset.prompt;
    if (preset.raw !== undefined) raw.checked = Boolean(preset.raw);
    target.set?.({ ...preset, ...(preset.part || {}) });
    clear(presetNote).append(el("p", { class: "xp-look" }, el("strong", { text: say("look_for") }), " ",
      preset.look_for), el("p", { class: "xp-measured" }, el("strong", { text: say("measured") }), " ",
      preset.measured));
    presetNote.dataset.preset = preset.id;
    target.node.scrollIntoView({ block: "start" });
    return target.run?.();
  }

  const link = sharedState("experiments");
  get("/api/experiments/presets").then((list) => {
    clear(presets);
    if (!list.length) presets.append(el("p", { class: "note", text: say("presets_none") }));
    for (const preset of list) {
      presets.append(el("button", { type: "button", class: "xp-preset", "data-preset": preset.id,
        "data-experiment": preset.experiment, onclick: () => usePreset(preset) }, preset.title));
    }
    // Start on a preset's prompt (the walkthrough's own is a chat question, less telling here).
    const first = list.find((p) => p.prompt);
    if (!link && first && !prompt.value) {
      prompt.value = first.prompt;
      if (first.raw !== undefined) raw.checked = Boolean(first.raw);
      if (first.source) ctx.panels.patching.set(first);
    }
    const pair = list.find((p) => p.source && p.target);
    if (pair) ctx.panels.patching.set(pair);
    root.dataset.presets = String(list.length);
  }).catch((error) => {
    clear(presets).append(errorBox(say("presets_failed", { message: error.message })));
    if (!prompt.value) prompt.value = document.getElementById("prompt")?.value || "";
  }).finally(() => {
    root.dataset.ready = "1";
    if (link) restore(link);
  });

  // A shared link: the same prompt, the same settings, and the experiment it ran, run again.
  function restore(state) {
    if (state.prompt) prompt.value = state.prompt.slice(0, 4000);
    raw.checked = state.raw !== "0";
    const num = (v) => (/^-?\d{1,3}(\.\d+)?$/.test(v ?? "") ? Number(v) : null);
    const name = state.run;
    if (name === "ablation") {
      const kind = ["head", "layer_attn", "mlp"].includes(state.kind) ? state.kind : null;
      ctx.panels.ablation.set({ kind, layer: num(state.layer), head: num(state.head) });
    } else if (name === "patching") {
      ctx.panels.patching.set({ source: state.source ?? null, target: state.target ?? null });
    } else if (name === "steering") {
      ctx.panels.steering.set({ layer: num(state.layer), strength: num(state.strength) });
    } else if (name === "lens" || name === "branch") {
      ctx.panels[name].set({ new_tokens: num(state.n) });
    }
    const target = ctx.panels[name];
    if (target?.run) target.run().then(() => target.node.scrollIntoView({ block: "start" }));
  }
}
