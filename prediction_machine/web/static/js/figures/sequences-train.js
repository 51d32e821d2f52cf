// Training the two sequence models: what the shipped ones cost and how they measure up against
// simple baselines, and a short live run that goes from noise to digits or tunes.
import { get, post, stream } from "../lib/api.js";
import { clear, codeLink, el, errorBox } from "../lib/dom.js";
import { playTune } from "./sequences-melody.js";
import { runsChanged } from "./sequences-models.js";
import { sharedState, shareState } from "../lib/share.js";
import { digitCanvas } from "./sequences-view.js";
import { lineChart } from "./training-view.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("sequences");

const nats = (x) => format.fixed(x, 3);
const pct = (x) => format.percent(x, 1);

function table(head, rows, id) {
  return el("div", { class: "table-wrap" }, el("table", { id },
    el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i ? "num" : "", text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: i ? "num" : "",
      text: String(c) })))))));
}

function costLine(r) {
  return say("parameters_parameters_n_steps", { parameters: format.int(r.parameters), n: r.step,
    tokens: format.int(r.tokens) }) +
    say("seconds_training_projects_cpu", { seconds: format.seconds(r.seconds), flops: format.si(r.flops) });
}

function shippedPanel(kind, r) {
  const m = r.measurements;
  const box = el("div", { class: "panel", id: `shipped-${kind}` },
    el("h5", { text: kind === "digits" ? say("shipped_pixel_model") : say("shipped_note_model") }), el("p",
      { text: costLine(r) }));
  if (!m) return box;
  const n = m.nll;
  if (kind === "digits") {
    box.append(table([say("heldout_nll_per_pixel"), say("value")], [
      [say("model_told_digit"), nats(n.model_nll)], [say("model_asked_any_digit"), nats(n.model_nll_any)],
      [say("pixels_own_greylevel_counts"), nats(n.pixel_frequency_nll)], [say("grey_level_pixel_before"),
        nats(n.bigram_nll)]], "digits-nll"));
    const t = m.recognition;
    box.append(el("p", { class: "note", text: say("asked_digit_n_times", { n: t.per_digit[0].samples,
      temperature: t.temperature, share: pct(t.share),
      classifier_held_out_accuracy: pct(t.classifier_held_out_accuracy) }) }),
      table([say("digit_asked"), say("recognized"), say("share")], t.per_digit.map((d) => [String(d.digit),
        `${d.recognized} / ${d.samples}`, pct(d.share)]), "digits-recognition"));
  } else {
    box.append(table([say("heldout_nll_per_note"), say("value")], [
      [say("this_model"), nats(n.model_nll)], [say("pitch_length_their_overall"), nats(n.unigram_nll)],
      [say("pitch_pitch_before_length"), nats(n.bigram_nll)]], "melody-nll"));
    const g = m.range.generated, c = m.range.chorales;
    box.append(table(["", say("lowest"), say("highest"), say("middle_90"), say("white_keys")], [
      [say("n_generated_tunes", { n: m.range.samples }), g.lowest, g.highest, `${g.p5}–${g.p95}`,
        pct(g.in_key)],
      [say("n_heldout_chorales", { n: n.held_out_tunes }), c.lowest, c.highest, `${c.p5}–${c.p95}`,
        pct(c.in_key)]], "melody-range"));
  }
  return box;
}

export function mountTraining(root) {
  const shipped = el("div", { class: "shipped", id: "sequences-shipped" }, el("p", { class: "note",
    text: say("loading_shipped_models_records") }));
  const kind = el("select", { id: "seq-train-kind", "aria-label": say("which_model_train") },
    el("option", { value: "digits", text: say("pixel_model_digits") }), el("option", { value: "melody",
      text: say("note_model_chorales") }));
  const steps = el("input", { type: "number", id: "seq-train-steps", min: "10", max: "2000", value: "200",
    "aria-label": say("training_steps") });
  const startBtn = el("button", { type: "button", class: "primary", id: "seq-train-start",
    "data-tour-stop": "seq-train-start", text: say("train_scratch") });
  const stopBtn = el("button", { type: "button", id: "seq-train-stop", text: say("stop"), disabled: true });
  const status = el("p", { class: "status", id: "seq-train-status", role: "status" });
  const chart = el("div", { class: "chart-box", "data-chart": "sequences-loss" });
  // It scrolls once long: a named Tab stop, so a keyboard can scroll it too.
  const samples = el("ol", { class: "samples seq-samples", id: "seq-train-samples", "aria-live": "polite",
    tabindex: 0, "aria-label": say("samples_learns_newest_first") });
  let job = null, abort = null;
  // A shared link's settings (#sequences?kind=melody&steps=300): set, not started; each value checked.
  const link = sharedState("sequences") || {};
  if (["digits", "melody"].includes(link.kind)) kind.value = link.kind;
  if (/^\d{1,4}$/.test(link.steps ?? "") && link.steps >= 10 && link.steps <= 2000) steps.value = link.steps;

  get("/api/sequences/models").then((data) => {
    clear(shipped).append(shippedPanel("digits", data.digits), shippedPanel("melody", data.melody));
  }).catch((e) => clear(shipped).append(errorBox(e.message)));

  startBtn.addEventListener("click", async () => {
    const run = { loss: [], evals: [], total: Number(steps.value) };
    shareState("sequences", { kind: kind.value, steps: steps.value });
    clear(samples);
    const redraw = () => lineChart(chart, [{ name: say("training_loss_nats_per"), cls: "train",
      points: run.loss },
      { name: say("heldout_loss"), cls: "validation", points: run.evals, dots: true }], { xMax: run.total });
    redraw();
    try {
      job = (await post("/api/sequences/train", { kind: kind.value, steps: run.total })).job;
    } catch (e) { status.replaceChildren(errorBox(e.message)); return; }
    startBtn.disabled = true; stopBtn.disabled = false;
    status.textContent = say("training");
    abort = new AbortController();
    try {
      await stream(`/api/sequences/jobs/${job.id}/events`, { after: 0 }, (name, d) => {
        if (name === "step") {
          run.loss.push([d.step, d.loss]);
          status.textContent = say("step_step_steps_loss", { step: d.step, steps: d.steps,
            loss: d.loss.toFixed(3), seconds: format.seconds(d.seconds), flops: format.si(d.flops) });
        } else if (name === "eval") run.evals.push([d.step, d.eval_loss]);
        else if (name === "sample") samples.prepend(sampleItem(d));
        else if (name === "done") status.textContent = say("done_value_n_steps",
          { value: d.reason ?? d.status, n: d.step ?? 0, seconds: format.seconds(d.seconds),
          flops: format.si(d.flops) });
        else if (name === "error") status.replaceChildren(errorBox(d.error));
        if (name !== "step" || d.step % 5 === 0) redraw();
      }, { signal: abort.signal });
    } catch (e) { if (e.name !== "AbortError") status.replaceChildren(errorBox(e.message)); }
    redraw();
    runsChanged();  // saved at its end (or its stop): the figures' model lists now hold it
    startBtn.disabled = false; stopBtn.disabled = true;
  });
  stopBtn.addEventListener("click", async () => {
    if (!job) return;
    stopBtn.disabled = true;
    try { await post(`/api/sequences/jobs/${job.id}/stop`,
      {}); } catch (e) { status.replaceChildren(errorBox(e.message)); }
  });

  root.append(el("h4", { text: say("train_them_yourself") }),
    el("p", { text: say("both_models_same_tiny") }),
    shipped,
    el("div", { class: "row" }, kind, el("label", { for: "seq-train-steps", text: say("steps") }), steps,
      startBtn,
      stopBtn),
    status, chart, el("h5", { text: say("samples_learns_newest_first") }), samples,
    codeLink("prediction_machine.sequences.train.train"));
}

function sampleItem(d) {
  const head = el("span", { class: "sample-step", text: say("sample_step", { step: d.step }) });
  if (d.images) return el("li", {}, head, el("div", { class: "thumbs" }, d.images.map((img,
    i) => digitCanvas(img, 36, say("a_drawn_digit", { digit: i })))));
  const play = el("button", { type: "button", class: "small", text: say("play"),
    onclick: () => playTune(d.notes) });
  return el("li", {}, head, el("p", { class: "sample-text", text: d.names.join(" ") || say("no_notes") }),
    play);
}
