// "One machine, any sequence": the same decoder, sampling code and generation loop as the text
// model, trained on pixels and on notes. Two live figures and a training panel.
import { codeLink, el } from "../lib/dom.js";
import { mountDigits } from "../figures/sequences-digits.js";
import { mountMelody } from "../figures/sequences-melody.js";
import { mountMine } from "../figures/sequences-mine.js";
import { mountTraining } from "../figures/sequences-train.js";
import { words } from "../lib/words.js";

const say = words("sequences");

export function mount(root) {
  root.replaceChildren();
  const digits = el("div", { class: "panel seq-panel", id: "seq-digits" });
  const melody = el("div", { class: "panel seq-panel", id: "seq-melody" });
  const training = el("div", { class: "panel seq-panel", id: "seq-training",
    "data-tour-stop": "seq-training" });
  const mine = el("div", { class: "panel seq-panel", id: "seq-mine" });
  root.append(
    digits, melody,
    el("div", { class: "panel seq-panel same-code" },
      el("h4", { text: say("same_code_visibly") }),
      el("p", { text: say("these_links_open_very") }),
      codeLink("prediction_machine.model.transformer.Block.forward", say("decoders_layer")),
      codeLink("prediction_machine.inference.sampling.distribution", say("temperature_sampling_filters")),
      codeLink("prediction_machine.inference.sampling.draw", say("random_draw")),
      codeLink("prediction_machine.inference.generation.generate", say("generation_loop"))),
    training, mine,
  );
  mountDigits(digits);
  mountMelody(melody);
  mountTraining(training);
  mountMine(mine);
}
