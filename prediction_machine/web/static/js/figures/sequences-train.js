// Training the two sequence models: what the shipped ones cost and how they measure up against
// simple baselines, and a short live run that goes from noise to digits or tunes.
import { get, post, stream } from "../lib/api.js";
import { clear, codeLink, el, errorBox } from "../lib/dom.js";
import { playTune } from "./sequences-melody.js";
import { digitCanvas, plural } from "./sequences-view.js";
import { fmtInt, fmtSec, fmtSI, lineChart } from "./training-view.js";

const nats = (x) => (x == null ? "–" : x.toFixed(3));
const pct = (x) => `${(x * 100).toFixed(1)}%`;

function table(head, rows, id) {
  return el("div", { class: "table-wrap" }, el("table", { id },
    el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i ? "num" : "", text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { class: i ? "num" : "", text: String(c) })))))));
}

function costLine(r) {
  return `${fmtInt(r.parameters)} parameters, ${plural(r.step, "step")}, ${fmtInt(r.tokens)} tokens predicted, ` +
    `${fmtSec(r.seconds)} of training on this project's CPU, about ${fmtSI(r.flops)}FLOPs (6 × parameters × tokens).`;
}

function shippedPanel(kind, r) {
  const m = r.measurements;
  const box = el("div", { class: "panel", id: `shipped-${kind}` },
    el("h5", { text: kind === "digits" ? "The shipped pixel model" : "The shipped note model" }), el("p", { text: costLine(r) }));
  if (!m) return box;
  const n = m.nll;
  if (kind === "digits") {
    box.append(table(["held-out NLL per pixel (nats, lower is better)", "value"], [
      ["this model, told the digit", nats(n.model_nll)], ["this model, asked for any digit", nats(n.model_nll_any)],
      ["each pixel's own grey-level counts", nats(n.pixel_frequency_nll)], ["grey level from the pixel before", nats(n.bigram_nll)]], "digits-nll"));
    const t = m.recognition;
    box.append(el("p", { class: "note", text: `Asked for each digit ${plural(t.per_digit[0].samples, "time")} at temperature ${t.temperature}: the classifier recognized the digit asked for in ${pct(t.share)} of the drawings. On real held-out digits the classifier itself is right ${pct(t.classifier_held_out_accuracy)} of the time.` }),
      table(["digit asked for", "recognized", "share"], t.per_digit.map((d) => [String(d.digit), `${d.recognized} / ${d.samples}`, pct(d.share)]), "digits-recognition"));
  } else {
    box.append(table(["held-out NLL per note (nats, lower is better)", "value"], [
      ["this model", nats(n.model_nll)], ["pitch and length from their overall counts", nats(n.unigram_nll)],
      ["pitch from the pitch before, length from the length before", nats(n.bigram_nll)]], "melody-nll"));
    const g = m.range.generated, c = m.range.chorales;
    box.append(table(["", "lowest", "highest", "middle 90%", "on the white keys"], [
      [`${plural(m.range.samples, "generated tune")}`, g.lowest, g.highest, `${g.p5}–${g.p95}`, pct(g.in_key)],
      [`${plural(n.held_out_tunes, "held-out chorale")}`, c.lowest, c.highest, `${c.p5}–${c.p95}`, pct(c.in_key)]], "melody-range"));
  }
  return box;
}

export function mountTraining(root) {
  const shipped = el("div", { class: "shipped", id: "sequences-shipped" }, el("p", { class: "note", text: "Loading the shipped models' records…" }));
  const kind = el("select", { id: "seq-train-kind", "aria-label": "which model to train" },
    el("option", { value: "digits", text: "the pixel model (digits)" }), el("option", { value: "melody", text: "the note model (chorales)" }));
  const steps = el("input", { type: "number", id: "seq-train-steps", min: "10", max: "2000", value: "200", "aria-label": "training steps" });
  const startBtn = el("button", { type: "button", class: "primary", id: "seq-train-start", text: "Train from scratch" });
  const stopBtn = el("button", { type: "button", id: "seq-train-stop", text: "Stop", disabled: true });
  const status = el("p", { class: "status", id: "seq-train-status", role: "status" });
  const chart = el("div", { class: "chart-box", "data-chart": "sequences-loss" });
  const samples = el("ol", { class: "samples seq-samples", id: "seq-train-samples", "aria-live": "polite" });
  let job = null, abort = null;

  get("/api/sequences/models").then((data) => {
    clear(shipped).append(shippedPanel("digits", data.digits), shippedPanel("melody", data.melody));
  }).catch((e) => clear(shipped).append(errorBox(e.message)));

  startBtn.addEventListener("click", async () => {
    const run = { loss: [], evals: [], total: Number(steps.value) };
    clear(samples);
    const redraw = () => lineChart(chart, [{ name: "training loss (nats per token)", cls: "train", points: run.loss },
      { name: "held-out loss", cls: "validation", points: run.evals, dots: true }], { xMax: run.total });
    redraw();
    try {
      job = (await post("/api/sequences/train", { kind: kind.value, steps: run.total })).job;
    } catch (e) { status.replaceChildren(errorBox(e.message)); return; }
    startBtn.disabled = true; stopBtn.disabled = false;
    status.textContent = "Training…";
    abort = new AbortController();
    try {
      await stream(`/api/sequences/jobs/${job.id}/events`, { after: 0 }, (name, d) => {
        if (name === "step") {
          run.loss.push([d.step, d.loss]);
          status.textContent = `Step ${d.step} of ${d.steps}: loss ${d.loss.toFixed(3)}, ${fmtSec(d.seconds)}, ${fmtSI(d.flops)}FLOPs so far.`;
        } else if (name === "eval") run.evals.push([d.step, d.eval_loss]);
        else if (name === "sample") samples.prepend(sampleItem(d));
        else if (name === "done") status.textContent = `Done (${d.reason ?? d.status}): ${plural(d.step ?? 0, "step")} in ${fmtSec(d.seconds)}, about ${fmtSI(d.flops)}FLOPs.`;
        else if (name === "error") status.replaceChildren(errorBox(d.error));
        if (name !== "step" || d.step % 5 === 0) redraw();
      }, { signal: abort.signal });
    } catch (e) { if (e.name !== "AbortError") status.replaceChildren(errorBox(e.message)); }
    redraw();
    startBtn.disabled = false; stopBtn.disabled = true;
  });
  stopBtn.addEventListener("click", async () => {
    if (!job) return;
    stopBtn.disabled = true;
    try { await post(`/api/sequences/jobs/${job.id}/stop`, {}); } catch (e) { status.replaceChildren(errorBox(e.message)); }
  });

  root.append(el("h4", { text: "Train them yourself" }),
    el("p", { text: "Both models are the same tiny decoder, trained with the same loop as the curriculum's Shakespeare model. Only the data and the tokenizer differ. The shipped models were trained on this project's CPU; their cost and their scores against simple counting baselines are below, measured on data they never saw." }),
    shipped,
    el("div", { class: "row" }, kind, el("label", { for: "seq-train-steps", text: "steps" }), steps, startBtn, stopBtn),
    status, chart, el("h5", { text: "Samples as it learns (newest first)" }), samples,
    codeLink("prediction_machine.sequences.train.train", "view code"));
}

function sampleItem(d) {
  const head = el("span", { class: "sample-step", text: `step ${d.step}` });
  if (d.images) return el("li", {}, head, el("div", { class: "thumbs" }, d.images.map((img, i) => digitCanvas(img, 36, `a drawn ${i}`))));
  const play = el("button", { type: "button", class: "small", text: "play", onclick: () => playTune(d.notes) });
  return el("li", {}, head, el("p", { class: "sample-text", text: d.names.join(" ") || "(no notes)" }), play);
}
