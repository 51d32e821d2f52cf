// "One machine, any sequence": the same decoder, sampling code and generation loop as the text
// model, trained on pixels and on notes. Two live figures and a training panel.
import { codeLink, el } from "../lib/dom.js";
import { mountDigits } from "../figures/sequences-digits.js";
import { mountMelody } from "../figures/sequences-melody.js";
import { mountTraining } from "../figures/sequences-train.js";

export function mount(root) {
  root.replaceChildren();
  const digits = el("div", { class: "panel seq-panel", id: "seq-digits" });
  const melody = el("div", { class: "panel seq-panel", id: "seq-melody" });
  const training = el("div", { class: "panel seq-panel", id: "seq-training" });
  root.append(
    digits, melody,
    el("div", { class: "panel seq-panel same-code" },
      el("h4", { text: "The same code, visibly" }),
      el("p", { text: "These links open the very functions the text model uses. Nothing in them knows about text, pixels or notes: they see token ids and scores." }),
      codeLink("prediction_machine.model.transformer.Block.forward", "the decoder's layer"),
      codeLink("prediction_machine.inference.sampling.distribution", "temperature and the sampling filters"),
      codeLink("prediction_machine.inference.sampling.draw", "the random draw"),
      codeLink("prediction_machine.inference.generation.generate", "the generation loop")),
    training,
  );
  mountDigits(digits);
  mountMelody(melody);
  mountTraining(training);
}
