// "Draw a digit": the pixel model fills an 8x8 grid one pixel at a time. Each step shows the
// 17-way distribution over grey levels and where the random draw landed. The learner may paint
// the first rows and let the model complete the rest; a classifier says what the result looks like.
import { post } from "../lib/api.js";
import { clear, codeLink, el, errorBox, reducedMotion } from "../lib/dom.js";
import { clampIndex, onArrowKeys } from "../lib/draw.js";
import { distributionChart, drawStrip, shade } from "./sequences-view.js";
import { modelPicker, pickModel } from "./sequences-models.js";
import { sharedState, shareState } from "../lib/share.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("sequences");

const LEVELS = 17, SIDE = 8, PIXELS = 64;
const BRUSHES = [0, 4, 8, 12, 16];
const GREYS = "0123456789abcdefg";  // a painted prefix in a shared link: one character per grey level
const aDigit = (d) => `${d === 8 ? "an" : "a"} ${d}`; // "a 3", "an 8"

export function mountDigits(root) {
  const s = { steps: [], shown: 0, prefix: [], painted: new Array(PIXELS).fill(null), result: null,
    timer: null, seed: 1, cursor: 0, brush: 16, pending: null };

  const digitPick = el("select", { id: "digit-pick", "data-tour-stop": "digit-pick",
    "aria-label": say("digit_draw") },
    el("option", { value: "any", text: say("any_digit") }), [...Array(10).keys()].map((d) => el("option",
      { value: String(d), text: aDigit(d) })));
  digitPick.value = "3";
  const temp = el("input", { type: "range", id: "digit-temperature", min: "0", max: "2", step: "0.1",
    value: "1", "aria-label": say("temperature") });
  const tempOut = el("output", { for: "digit-temperature", text: "1.0" });
  const modelPick = modelPicker("digits", "digit-model");  // the shipped model, or a live run of mine
  temp.addEventListener("input", () => { tempOut.textContent = Number(temp.value).toFixed(1); });
  const drawBtn = el("button", { type: "button", class: "primary", id: "digit-new",
    text: say("draw_button") });
  const stepBtn = el("button", { type: "button", id: "digit-step", "data-tour-stop": "digit-step",
    text: say("step") });
  const playBtn = el("button", { type: "button", id: "digit-play", text: say("play_button") });
  const completeBtn = el("button", { type: "button", id: "digit-complete", text: say("complete_my_rows") });
  const clearBtn = el("button", { type: "button", id: "digit-clear", text: say("clear_my_paint") });
  const brushes = el("div", { class: "row brushes", role: "radiogroup",
    "aria-label": say("paint_brush_grey_level") },
    BRUSHES.map((b) => el("button", { type: "button", class: `brush ${b === s.brush ? "on" : ""}`,
      "data-level": b, role: "radio",
      "aria-checked": String(b === s.brush), "aria-label": say("grey_level", { level: b }),
      style: { background: shade(b) },
      onclick: () => setBrush(b) })));
  const grid = el("div", { class: "pixel-grid", id: "pixel-grid", "data-tour-stop": "pixel-grid",
    role: "grid", "aria-label": say("drawing_click_press_enter") });
  const cells = [];
  for (let r = 0; r < SIDE; r++) {
    const row = el("div", { role: "row", class: "pixel-row" });
    for (let c = 0; c < SIDE; c++) {
      const i = r * SIDE + c;
      const cell = el("button", { type: "button", role: "gridcell", class: "pixel", "data-index": i,
        tabindex: i === 0 ? "0" : "-1",
        onclick: () => paint(i) });
      cells.push(cell);
      row.append(cell);
    }
    grid.append(row);
  }
  onArrowKeys(grid, (dr, dc) => {
    const r = clampIndex(Math.floor(s.cursor / SIDE) + dr, SIDE), c = clampIndex((s.cursor % SIDE) + dc,
      SIDE);
    focusCell(r * SIDE + c);
  });
  grid.addEventListener("keydown", (e) => {
    if (/^[0-4]$/.test(e.key)) { setBrush(BRUSHES[Number(e.key)]); e.preventDefault(); }
  });
  const status = el("p", { class: "status", id: "digit-status", role: "status",
    text: say("pick_digit_press_draw") });
  const distBox = el("div", { class: "dist-box", id: "digit-dist", "data-tour-stop": "digit-dist" });
  const judge = el("div", { class: "judge", id: "digit-judge", "aria-live": "polite" });

  function setBrush(b) {
    s.brush = b;
    for (const n of brushes.children) {
      const on = Number(n.dataset.level) === b;
      n.classList.toggle("on", on);
      n.setAttribute("aria-checked", String(on));
    }
  }
  function focusCell(i) {
    cells[s.cursor].tabIndex = -1;
    s.cursor = i;
    cells[i].tabIndex = 0;
    cells[i].focus();
  }
  function paint(i) {
    focusCell(i);
    stopPlay();
    s.painted[i] = s.painted[i] === s.brush ? null : s.brush;
    s.steps = []; s.shown = 0; s.result = null;
    render();
  }
  function paintedPrefix() {
    let last = -1;
    s.painted.forEach((v, i) => { if (v !== null) last = i; });
    if (last < 0) return [];
    const rows = Math.floor(last / SIDE) + 1;
    return s.painted.slice(0, rows * SIDE).map((v) => v ?? 0);
  }

  function levelAt(i) {
    if (i < s.prefix.length) return s.prefix[i];
    const k = i - s.prefix.length;
    if (k < s.shown) return s.steps[k].level;
    if (!s.steps.length && s.painted[i] !== null) return s.painted[i];
    return null;
  }

  function render() {
    for (let i = 0; i < PIXELS; i++) {
      const v = levelAt(i);
      const cell = cells[i];
      cell.style.background = v === null ? "" : shade(v);
      cell.classList.toggle("empty", v === null);
      cell.classList.toggle("yours", i < s.prefix.length || (!s.steps.length && s.painted[i] !== null));
      cell.classList.toggle("next",
        s.steps.length > 0 && i === s.prefix.length + s.shown && s.shown < s.steps.length);
      cell.classList.toggle("latest", s.shown > 0 && i === s.prefix.length + s.shown - 1);
      const value = v === null ? say("cell_empty") : say("cell_grey", { v });
      const where = { row: Math.floor(i / SIDE) + 1, column: (i % SIDE) + 1 };
      cell.setAttribute("aria-label", say("cell_label", { ...where, value }));
    }
    grid.dataset.filled = String(s.prefix.length + s.shown);
    stepBtn.disabled = playBtn.disabled = s.steps.length > 0 && s.shown >= s.steps.length;
    renderDistribution();
    renderJudge();
  }

  function renderDistribution() {
    clear(distBox);
    if (!s.shown) {
      distBox.append(el("p", { class: "note", text: say("step_model_gives_all") }));
      return;
    }
    const st = s.steps[s.shown - 1];
    const r = Math.floor(st.pixel / SIDE) + 1, c = (st.pixel % SIDE) + 1;
    const bars = st.probs.map((p, level) => ({ label: say("grey_n", { level }), short: String(level), prob: p,
      swatch: shade(level) }));
    const caption = say("pixel_value_pixels_row", { value: st.pixel + 1, PIXELS, r, c, LEVELS,
      temperature: Number(s.temperature).toFixed(1) });
    distBox.dataset.pixel = String(st.pixel);
    distBox.append(el("p", { class: "caption", id: "digit-dist-caption",
      "data-tour-stop": "digit-dist-caption", text: caption }),
      distributionChart(bars, st.level, { caption }),
      drawStrip(bars.map((b) => ({ label: b.label, prob: b.prob })), say("grey_n", { level: st.level }), st.u,
        st.cumulative_before, st.prob),
      el("p", { class: "note", text: say("uncertainty_entropy_entropy_bits", { entropy: st.entropy.toFixed(2),
        LEVELS }) +
        (st.other >= 0.0005 ? say("request_tokens_keep_other",
          { other: format.probability(st.other) }) : "") }));
  }

  function renderJudge() {
    clear(judge);
    if (!s.result || s.shown < s.steps.length) return;
    const c = s.result.classifier;
    const asked = s.result.digit === null ? say("any_digit") : aDigit(s.result.digit);
    const bars = c.probs.map((p, d) => ({ label: aDigit(d), short: String(d), prob: p }));
    judge.append(el("p", { id: "digit-verdict", "data-guess": c.guess, "data-confidence": c.confidence },
      el("strong", { text: say("classifier_sees_guess_confidence", { guess: aDigit(c.guess),
        confidence: format.probability(c.confidence) }) }),
      say("asked_asked_classifier_was", { asked })),
    distributionChart(bars, c.guess, { caption: say("classifiers_probability_digit"), height: 110 }));
  }

  async function fetchDrawing(prefix) {
    stopPlay();
    const digit = digitPick.value === "any" ? null : Number(digitPick.value);
    s.temperature = Number(temp.value);
    status.textContent = say("asking_model");
    try {
      const seed = s.seed++;
      const data = await post("/api/sequences/digits/draw", { digit, prefix, temperature: s.temperature,
        seed, run: modelPick.value || null });
      shareState("sequences", { digit: digitPick.value, d_temp: temp.value, d_seed: seed,
        d_run: modelPick.value, d_paint: prefix.map((v) => GREYS[v]).join("") });
      s.steps = data.steps; s.prefix = prefix; s.shown = 0; s.result = data;
      status.textContent = prefix.length
        ? say("value_stay_model_fills", { value: say("n_rows", { n: prefix.length / SIDE }),
          length: say("n_pixels", { n: s.steps.length }) })
        : say("model_will_fill_all", { PIXELS });
      return true;
    } catch (error) {
      status.replaceChildren(errorBox(error.message));
      return false;
    }
  }
  function stopPlay() {
    if (s.timer) clearInterval(s.timer);
    s.timer = null;
    playBtn.textContent = say("play_button");
  }
  function stepOnce() {
    if (s.shown < s.steps.length) s.shown++;
    if (s.shown >= s.steps.length) {
      stopPlay();
      const yours = s.prefix.length ? say("your_rows_then", { n: s.prefix.length / SIDE }) : "";
      status.textContent = say("done_yours_n_pixels", { yours, n: s.steps.length });
    }
    render();
  }
  async function play(prefix) {
    if (!s.steps.length || s.shown >= s.steps.length) { if (!(await fetchDrawing(prefix))) return; }
    if (reducedMotion()) { s.shown = s.steps.length; stepOnce(); return; }
    playBtn.textContent = say("pause_button");
    s.timer = setInterval(stepOnce, 70);
  }

  drawBtn.addEventListener("click", async () => { s.steps = []; await play([]); });
  stepBtn.addEventListener("click", async () => {
    stopPlay();
    // Clicks while the drawing is on its way wait for that one request, then each takes its step.
    if (!s.pending && (!s.steps.length || s.shown >= s.steps.length)) {
      s.pending = fetchDrawing(s.steps.length ? [] : paintedPrefix()).finally(() => { s.pending = null; });
    }
    if (s.pending && !(await s.pending)) return;
    stepOnce();
  });
  playBtn.addEventListener("click",
    () => (s.timer ? stopPlay() : play(s.steps.length ? s.prefix : paintedPrefix())));
  completeBtn.addEventListener("click", async () => {
    const prefix = paintedPrefix();
    if (!prefix.length) { status.textContent = say("paint_least_cell_first"); return; }
    if (prefix.length >= PIXELS) { status.textContent = say("leave_last_row_empty"); return; }
    s.steps = [];
    await play(prefix);
  });
  clearBtn.addEventListener("click", () => {
    stopPlay();
    s.painted.fill(null); s.steps = []; s.prefix = []; s.shown = 0; s.result = null;
    render();
  });

  root.append(
    el("h4", { text: say("draw_digit_pixel_pixel") }),
    el("div", { class: "row" }, el("label", { for: "digit-pick", text: say("draw_label") }), digitPick,
      el("label", { for: "digit-temperature", text: say("temperature") }), temp, tempOut,
      el("label", { for: "digit-model", text: say("model_label") }), modelPick),
    el("div", { class: "row" }, drawBtn, stepBtn, playBtn),
    el("div", { class: "digits-layout" },
      el("div", { class: "grid-side" }, grid,
        el("p", { class: "note", text: say("paint_choose_grey_click") }),
        brushes, el("div", { class: "row" }, completeBtn, clearBtn)),
      el("div", { class: "dist-side" }, status, distBox, judge)),
    codeLink("prediction_machine.sequences.pixel_tokens.encode", say("pixel_tokenizer_only_new")),
    codeLink("prediction_machine.sequences.digits.draw"),
  );
  render();
  openLink(sharedState("sequences") || {});

  // A shared link's drawing (#sequences?digit=3&d_temp=1&d_seed=7&d_run=...&d_paint=...), drawn again
  // with its seed and shown whole. A link is untrusted input: each value is checked against its range.
  async function openLink(link) {
    if ([...digitPick.options].some((o) => o.value === link.digit)) digitPick.value = link.digit;
    const t = Number(link.d_temp);
    if (link.d_temp && t >= 0 && t <= 2) { temp.value = link.d_temp; tempOut.textContent = t.toFixed(1); }
    const paint = link.d_paint ?? "";
    if (paint.length % SIDE === 0 && paint.length < PIXELS && [...paint].every((c) => GREYS.includes(c))) {
      [...paint].forEach((c, i) => { s.painted[i] = GREYS.indexOf(c); });
    }
    if (!/^\d{1,10}$/.test(link.d_seed ?? "") || Number(link.d_seed) >= 2 ** 31) { render(); return; }
    pickModel(modelPick, link.d_run);
    await modelPick.filled;
    s.seed = Number(link.d_seed);
    if (await fetchDrawing(paintedPrefix())) { s.shown = s.steps.length; stepOnce(); }
  }
}
