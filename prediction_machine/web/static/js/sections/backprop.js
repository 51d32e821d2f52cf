// The backprop section: two figures, each in its own module.
//   backprop-neuron.js     one neuron, one step at a time   (POST /api/backprop/neuron)
//   backprop-playground.js an MLP learning a 2-D dataset    (/api/backprop/sessions/...)
import { clear, el } from "../lib/dom.js";
import { mountNeuron } from "../figures/backprop-neuron.js";
import { mountPlayground } from "../figures/backprop-playground.js";

export function mount(root) {
  clear(root);
  const neuron = el("div", { class: "bp-figure", id: "bp-neuron" });
  const playground = el("div", { class: "bp-figure", id: "bp-playground" });
  root.append(neuron, playground);
  mountNeuron(neuron);
  mountPlayground(playground);
  root.dataset.ready = "live";
}
