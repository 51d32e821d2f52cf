// "My model beside the shipped one": a saved live run and the shipped model measured the same way, with
// the same seeds (POST /api/sequences/compare): the held-out loss the training loop reports, and a few
// samples each (one drawing of each digit with the classifier's verdict, or two tunes to play).
import { post } from "../lib/api.js";
import { clear, codeLink, el, errorBox } from "../lib/dom.js";
import { playTune } from "./sequences-melody.js";
import { CHANGED, myRuns, runLabel } from "./sequences-models.js";
import { digitCanvas } from "./sequences-view.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("sequences");
const kindName = (kind) => (kind === "digits" ? say("pixel_model_digits") : say("note_model_chorales"));

export function mountMine(root) {
  const pick = el("select", { id: "seq-compare-run" });
  const btn = el("button", { type: "button", id: "seq-compare", text: say("compare_with_shipped") });
  const status = el("p", { class: "status", id: "seq-compare-status", role: "status" });
  const out = el("div", { class: "sides seq-compare", id: "seq-compare-out" });

  const fill = async () => {
    let runs;
    try { runs = await myRuns(); } catch (e) { status.replaceChildren(errorBox(e.message)); return; }
    const keep = pick.value;
    pick.replaceChildren(...runs.map((r) => el("option", { value: r.id, "data-kind": r.kind,
      text: `${kindName(r.kind)}: ${runLabel(r)}` })));
    if ([...pick.options].some((o) => o.value === keep)) pick.value = keep;
    btn.disabled = !runs.length;
    if (!runs.length) status.textContent = say("no_runs_yet");
    else if (!out.childElementCount) status.textContent = "";
  };
  btn.addEventListener("click", async () => {
    const option = pick.selectedOptions[0];
    if (!option) return;
    btn.disabled = true;
    status.textContent = say("measuring_both");
    try {
      const data = await post("/api/sequences/compare", { kind: option.dataset.kind, run: option.value,
        seed: 0 });
      clear(out).append(side(data.kind, say("the_shipped_model"), data.shipped, "shipped"),
        side(data.kind, option.textContent, data.mine, "mine"));
      out.dataset.run = data.run;
      status.textContent = say("both_measured_same_seeds");
    } catch (e) { status.replaceChildren(errorBox(e.message)); }
    btn.disabled = false;
  });
  fill();
  document.addEventListener(CHANGED, fill);

  root.append(el("h5", { text: say("my_model_beside_shipped") }),
    el("p", { text: say("my_model_beside_shipped_why") }),
    el("div", { class: "row" }, el("label", { for: "seq-compare-run", text: say("my_run") }), pick, btn),
    status, out, codeLink("prediction_machine.sequences.own.compare"));
}

function side(kind, title, m, which) {
  const box = el("div", { class: "side", "data-side": which, "data-loss": String(m.eval_loss) },
    el("h5", { text: title }),
    el("p", { class: "loss", text: say("heldout_loss_value", { value: format.fixed(m.eval_loss, 3) }) }));
  if (kind === "digits") {
    box.dataset.recognized = String(m.recognized);
    box.append(el("p", { text: say("judge_recognized_n", { n: m.recognized }) }),
      el("div", { class: "thumbs" }, m.drawings.map((d) => el("figure", { class: "seq-drawn" },
        digitCanvas(d.pixels, 40, say("asked_seen", { digit: d.digit, guess: d.guess })),
        el("figcaption", { text: `${d.digit} → ${d.guess}` })))));
  } else {
    box.append(el("ol", { class: "seq-tunes" }, m.tunes.map((t) => el("li", {},
      el("span", { class: "sample-text", text: t.map((n) => n.name).join(" ") || say("no_notes") }), " ",
      el("button", { type: "button", class: "small", text: say("play"),
        onclick: () => playTune(t.map((n) => [n.pitch, n.beats])) })))));
  }
  return box;
}
