// The playground's controls: the dataset and network pickers, the training settings, what a click on
// the plane does, and Play / Step / Reset / New weights. A shared link may preset every picker.
import { el } from "../lib/dom.js";
import { sharedState } from "../lib/share.js";
import { words } from "../lib/words.js";

const say = words("backprop");

const OPTIONS = {
  dataset: ["moons", "circles", "xor", "spiral"], layers: [0, 1, 2, 3, 4], width: [1, 2, 3, 4, 6, 8, 12, 16],
  activation: ["tanh", "relu", "sigmoid"], lr: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
  batch: [1, 8, 32, 128, 600], l2: [0, 0.0001, 0.001, 0.01, 0.1],
};

const choice = (id, label, options, value) => {
  const select = el("select", { id, "data-tour-stop": id },
    ...options.map((o) => el("option", { value: String(o), text: String(o) })));
  select.value = String(value);
  return [select, el("label", { for: id }, label, select)];
};

// A shared link's value for `key` if it is one of `options`, else the default (a link is untrusted input).
function fromLink(shared, key, options, fallback) {
  const v = shared && shared[key];
  return v !== undefined && options.map(String).includes(v) ? v : fallback;
}

export function buildControls() {
  const shared = sharedState("backprop");
  const pick = (key, fallback) => fromLink(shared, key, OPTIONS[key], fallback);
  const c = {};
  const labels = [];
  const add = (name, id, label, options, value) => {
    const [select, wrap] = choice(id, label, options, value);
    c[name] = select;
    labels.push(wrap);
  };
  add("dataset", "bp-dataset", say("dataset"), OPTIONS.dataset, pick("dataset", "moons"));
  add("layers", "bp-layers", say("hidden_layers"), OPTIONS.layers, pick("layers", 2));
  add("width", "bp-width", say("neurons_per_layer"), OPTIONS.width, pick("width", 8));
  add("activation", "bp-act", say("activation"), OPTIONS.activation, pick("activation", "tanh"));
  add("lr", "bp-lr", say("learning_rate"), OPTIONS.lr, pick("lr", 0.3));
  add("batch", "bp-batch", say("batch_size"), OPTIONS.batch, pick("batch", 32));
  add("l2", "bp-l2", say("l_weight_decay"), OPTIONS.l2, pick("l2", 0));
  // The click mode's index is what a click does: 0 adds class 0, 1 adds class 1, 2 removes a point.
  const modes = [say("adds_class_blue_circle"), say("adds_class_orange_square"),
    say("removes_nearest_point")];
  add("mode", "bp-mode", say("click_plane"), modes, modes[0]);

  c.buttons = {
    play: el("button", { type: "button", class: "primary", "data-tour-stop": "bp-play",
      "aria-pressed": "false",
      text: say("play") }),
    step: el("button", { type: "button", text: say("step") }),
    reset: el("button", { type: "button", text: say("reset") }),
    fresh: el("button", { type: "button", text: say("new_weights") }),
  };
  c.panel = [el("div", { class: "bp-controls" }, labels),
    el("div", { class: "row bp-buttons" }, ...Object.values(c.buttons))];

  // A shared link's initial weights (a number the server checks), used once: the first session.
  const seed = shared && /^\d{1,10}$/.test(shared.seed || "") && Number(shared.seed) < 2 ** 31;
  c.linkedSeed = seed ? Number(shared.seed) : null;

  // The session the pickers describe, as POST /api/backprop/sessions takes it.
  c.session = () => ({ dataset: c.dataset.value,
    hidden: Array(Number(c.layers.value)).fill(Number(c.width.value)),
    activation: c.activation.value, ...c.training() });
  // The settings a running session can change without starting again.
  c.training = () => ({ learning_rate: Number(c.lr.value), batch_size: Number(c.batch.value),
    l2: Number(c.l2.value) });
  // What a copied link keeps (with the session's initial weights).
  c.link = () => ({ dataset: c.dataset.value, layers: c.layers.value, width: c.width.value,
    activation: c.activation.value, lr: c.lr.value, batch: c.batch.value, l2: c.l2.value });
  c.setPlaying = (playing) => {
    c.buttons.play.textContent = playing ? say("pause") : say("play");
    c.buttons.play.setAttribute("aria-pressed", String(playing));
  };
  return c;
}
