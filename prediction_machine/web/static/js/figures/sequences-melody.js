// "Compose a melody": the note model continues a tune one token at a time, a pitch and then its
// length, shown on a piano roll with the next choice's distribution beside it. The tune plays
// through the Web Audio API: synthesized tones, no audio files, nothing from the network.
import { post } from "../lib/api.js";
import { clear, codeLink, el, errorBox, reducedMotion, svg } from "../lib/dom.js";
import { distributionChart, drawStrip } from "./sequences-view.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";
import { modelPicker, pickModel } from "./sequences-models.js";
import { sharedState, shareState } from "../lib/share.js";

const say = words("sequences");

const NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"];
const noteName = (p) => `${NAMES[p % 12]}${Math.floor(p / 12) - 1}`;
const SECONDS_PER_BEAT = 0.5; // 120 beats per minute
const KEYS = [...Array(25).keys()].map((i) => 60 + i); // C4 .. C6 on the on-screen keyboard

// ----------------------------------------------------------------------------- sound
let audio = null;
function context() {
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!AudioCtx) return null;
  audio ||= new AudioCtx();
  if (audio.state === "suspended") audio.resume();
  return audio;
}
// One note as a triangle wave with a short attack and a fade, `delay` seconds from now.
function tone(pitch, beats, delay = 0) {
  const a = context();
  if (!a) return false;
  const osc = a.createOscillator(), gain = a.createGain();
  osc.type = "triangle";
  osc.frequency.value = 440 * 2 ** ((pitch - 69) / 12);
  const t0 = a.currentTime + delay, dur = beats * SECONDS_PER_BEAT;
  gain.gain.setValueAtTime(0.0001, t0);
  gain.gain.linearRampToValueAtTime(0.25, t0 + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.001, t0 + Math.max(0.05, dur * 0.95));
  osc.connect(gain).connect(a.destination);
  osc.start(t0);
  osc.stop(t0 + dur);
  return true;
}

// ----------------------------------------------------------------------------- the on-screen piano
// Laid out as a piano is: black keys sit over the line between two white keys. The keys come in one
// block per octave (C6 joins the second), so a narrow phone wraps the keyboard between octaves, never
// inside one. The whole keyboard is one Tab stop (a roving tabindex): arrow keys move from key to key,
// Home and End jump to the ends, and Enter or Space plays the focused key, as a click does.
const isBlack = (p) => NAMES[p % 12].length > 1;

function pianoKeys(play) {
  const buttons = KEYS.map((p) => el("button", { type: "button",
    class: `key ${isBlack(p) ? "black" : "white"}`, "data-pitch": p, tabindex: p === KEYS[0] ? "0" : "-1",
    "aria-label": say("add_note", { note: noteName(p) }), text: isBlack(p) ? "" : noteName(p),
    onclick: () => play(p) }));
  const octave = (keys) => {
    const whites = keys.filter((p) => !isBlack(p)).length;
    let before = 0; // white keys to the left of this key, in its octave
    return el("div", { class: "octave" }, keys.map((p) => {
      const key = buttons[KEYS.indexOf(p)];
      if (isBlack(p)) key.style.left = `calc(${(100 * before) / whites}% - var(--black-key) / 2)`;
      else before += 1;
      return key;
    }));
  };
  const keyboard = el("div", { class: "keyboard", id: "melody-keyboard", role: "group",
    "aria-label": say("onscreen_keyboard_add_note") }, octave(KEYS.slice(0, 12)), octave(KEYS.slice(12)));
  const moves = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, Home: -KEYS.length,
    End: KEYS.length };
  keyboard.addEventListener("keydown", (event) => {
    const at = buttons.indexOf(event.target);
    if (at < 0 || !(event.key in moves)) return;
    event.preventDefault(); // arrows would scroll the page
    const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + moves[event.key]))];
    buttons.forEach((b) => { b.tabIndex = b === next ? 0 : -1; });
    next.focus();
  });
  // A key clicked with the mouse becomes the keyboard's Tab stop, so Tab comes back to it.
  keyboard.addEventListener("click", (event) => {
    const key = event.target.closest(".key");
    if (key) buttons.forEach((b) => { b.tabIndex = b === key ? 0 : -1; });
  });
  return keyboard;
}

export function mountMelody(root) {
  const s = { data: null, shown: 0, timer: null, seed: 1, scheduled: 0, pending: null };
  const start = el("input", { type: "text", id: "melody-start", "data-tour-stop": "melody-start",
    value: "G4 G4 D5 C5", "aria-label": say("first_notes_like_c"),
    placeholder: say("first_notes_e_g"), autocomplete: "off", spellcheck: "false" });
  const temp = el("input", { type: "range", id: "melody-temperature", min: "0", max: "2", step: "0.1",
    value: "1", "aria-label": say("temperature") });
  const tempOut = el("output", { for: "melody-temperature", text: "1.0" });
  const modelPick = modelPicker("melody", "melody-model");  // the shipped model, or a live run of mine
  temp.addEventListener("input", () => { tempOut.textContent = Number(temp.value).toFixed(1); });
  const composeBtn = el("button", { type: "button", class: "primary", id: "melody-compose",
    "data-tour-stop": "melody-compose", text: say("compose") });
  const stepBtn = el("button", { type: "button", id: "melody-step", text: say("step") });
  const listenBtn = el("button", { type: "button", id: "melody-listen", text: say("play_tune") });
  const clearBtn = el("button", { type: "button", id: "melody-clear", text: say("clear_notes") });
  const keyboard = pianoKeys((p) => { start.value = `${start.value.trim()} ${noteName(p)}`.trim();
    scheduleNote(p, 1); });
  const roll = el("div", { class: "piano-roll", id: "piano-roll", "data-tour-stop": "piano-roll" });
  const distBox = el("div", { class: "dist-box", id: "melody-dist" });
  const status = el("p", { class: "status", id: "melody-status", role: "status",
    text: say("type_play_few_notes") });
  const summary = el("p", { class: "note", id: "melody-summary" });
  const figure = el("div", { class: "melody-figure", "data-scheduled": "0" });

  function scheduleNote(pitch, beats, delay = 0) {
    if (tone(pitch, beats, delay)) figure.dataset.scheduled = String(++s.scheduled);
  }

  // The notes so far: the learner's, then each model pitch whose length has been drawn.
  function notesShown() {
    const d = s.data;
    const notes = d.notes.slice(0, d.prompt).map((n) => ({ ...n, yours: true }));
    let pending = null;
    for (const st of d.steps.slice(0, s.shown)) {
      if (st.kind === "pitch") pending = st;
      else if (st.kind === "length" && pending) {
        notes.push({ pitch: pending.value, name: pending.label, beats: st.value, yours: false });
        pending = null;
      }
    }
    return { notes, pending };
  }

  function renderRoll() {
    clear(roll);
    if (!s.data) return roll.append(el("p", { class: "note", text: say("piano_roll_time_runs") }));
    const { notes, pending } = notesShown();
    const all = notes.map((n) => n.pitch).concat(pending ? [pending.value] : []);
    const lo = Math.min(...all, 64) - 2, hi = Math.max(...all, 72) + 2;
    const beats = notes.reduce((t, n) => t + n.beats, 0) + (pending ? 1 : 0);
    const PX = 30, ROW = 12, L = 34;
    const W = Math.max(560, L + beats * PX + 10), H = (hi - lo + 1) * ROW + 14;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, class: "roll", role: "img",
      "aria-label": say("piano_roll_n_notes", { n: notes.length }) });
    for (let p = lo; p <= hi; p++) {
      const y = (hi - p) * ROW;
      if (NAMES[p % 12].length > 1) chart.append(svg("rect", { x: L, y, width: W - L, height: ROW,
        class: "roll-black" }));
      if (p % 12 === 0) chart.append(svg("text", { x: 2, y: y + ROW - 1, class: "roll-label",
        text: noteName(p) }));
    }
    let t = 0;
    notes.forEach((n, i) => {
      const latest = i === notes.length - 1 && !pending ? "latest" : "";
      chart.append(svg("rect", { x: L + t * PX, y: (hi - n.pitch) * ROW, width: Math.max(3, n.beats * PX - 2),
        height: ROW - 1, class: `roll-note ${n.yours ? "yours" : "model"} ${latest}` },
      svg("title", { text: say("note_beats", { note: n.name, beats: n.beats }) })));
      t += n.beats;
    });
    if (pending) chart.append(svg("rect", { x: L + t * PX, y: (hi - (pending.value)) * ROW, width: PX - 2,
      height: ROW - 1, class: "roll-note pending" }));
    roll.dataset.notes = String(notes.length);
    roll.append(chart);
    roll.scrollLeft = Math.max(0, L + (t + 1) * PX + 40 - roll.clientWidth); // keep the newest note in view
  }

  function renderDistribution() {
    clear(distBox);
    if (!s.data || !s.shown) {
      return distBox.append(el("p", { class: "note", text: say("step_model_gives_every") }));
    }
    const st = s.data.steps[s.shown - 1];
    const same = (r) => (st.kind === "length" ? r.label.includes("beat") : !r.label.includes("beat"));
    let rows = st.rows.filter((r) => same(r) && (r.prob >= 0.003 || r.token === st.token));
    rows = rows.sort((a, b) => a.token - b.token);
    const chosen = rows.findIndex((r) => r.token === st.token);
    const what = st.kind === "length" ? say("how_long_note_lasts") : st.kind === "end" ? say("next_pitch_end")
      : say("next_pitch");
    const caption = say("step_value_length_what", { value: st.index + 1, length: s.data.steps.length, what,
      label: st.label });
    distBox.dataset.step = String(st.index);
    distBox.append(el("p", { class: "caption", id: "melody-dist-caption", text: caption }),
      distributionChart(rows.map((r) => ({ label: r.label, short: r.label.replace(" beats",
        "").replace(" beat", ""), prob: r.prob })), chosen, { caption }),
      drawStrip(st.rows.map((r) => ({ label: r.label, prob: r.prob })), st.label, st.u, st.cumulative_before,
        st.prob));
  }

  function render() {
    renderRoll();
    renderDistribution();
    const done = s.data && s.shown >= s.data.steps.length;
    if (done) {
      const m = s.data.summary;
      summary.textContent = m.notes ? say("n_notes_lowest_highest", { n: m.notes, lowest: m.lowest,
        highest: m.highest, in_key: format.percent(m.in_key) }) : "";
    } else summary.textContent = "";
  }

  async function fetchTune() {
    stopPlay();
    status.textContent = say("asking_model");
    try {
      const seed = s.seed++;
      s.data = await post("/api/sequences/melody/compose", { start: start.value, notes: 24,
        temperature: Number(temp.value), seed, run: modelPick.value || null });
      shareState("sequences", { m_start: start.value, m_temp: temp.value, m_seed: seed,
        m_run: modelPick.value });
      s.shown = 0;
      status.textContent = say("n_notes_then_models", { n: s.data.prompt });
      return true;
    } catch (error) {
      status.replaceChildren(errorBox(error.message));
      return false;
    }
  }
  function stopPlay() { if (s.timer) clearTimeout(s.timer); s.timer = null; }
  // Reveal one step; when a length completes a note, play it. Returns the note's beats, or 0.
  function stepOnce() {
    if (!s.data || s.shown >= s.data.steps.length) return 0;
    const st = s.data.steps[s.shown++];
    let beats = 0;
    if (st.kind === "length") {
      const { notes } = notesShown();
      const n = notes[notes.length - 1];
      scheduleNote(n.pitch, n.beats);
      beats = n.beats;
    }
    if (s.shown >= s.data.steps.length) status.textContent = say("done_n_notes_all",
      { n: notesShown().notes.length });
    render();
    return beats;
  }
  function playOn() {
    const beats = stepOnce();
    if (s.data && s.shown < s.data.steps.length) s.timer = setTimeout(playOn,
      reducedMotion() ? 0 : Math.max(60, beats * SECONDS_PER_BEAT * 1000));
    else s.timer = null;
  }

  composeBtn.addEventListener("click", async () => {
    context(); // created inside the click, so the browser lets it make sound
    if (!(await fetchTune())) return;
    s.data.notes.slice(0, s.data.prompt).forEach((n, i, a) => scheduleNote(n.pitch, n.beats, a.slice(0,
      i).reduce((t, m) => t + m.beats, 0) * SECONDS_PER_BEAT));
    render();
    playOn();
  });
  stepBtn.addEventListener("click", async () => {
    context();
    stopPlay();
    // Clicks while the tune is on its way wait for that one request, then each takes its step.
    if (!s.pending && (!s.data
      || s.shown >= s.data.steps.length)) s.pending = fetchTune().finally(() => { s.pending = null; });
    if (s.pending && !(await s.pending)) return;
    stepOnce();
  });
  listenBtn.addEventListener("click", () => {
    if (!s.data) { status.textContent = say("compose_tune_first"); return; }
    let t = 0;
    for (const n of notesShown().notes) { scheduleNote(n.pitch, n.beats,
      t); t += n.beats * SECONDS_PER_BEAT; }
  });
  clearBtn.addEventListener("click", () => { start.value = ""; start.focus(); });

  figure.append(
    el("h4", { text: say("compose_melody_note_note") }),
    el("div", { class: "row" }, el("label", { for: "melody-start", text: say("first_notes") }), start,
      clearBtn),
    keyboard,
    el("div", { class: "row" }, el("label", { for: "melody-temperature", text: say("temperature") }), temp,
      tempOut, el("label", { for: "melody-model", text: say("model_label") }), modelPick, composeBtn, stepBtn,
      listenBtn),
    status, roll, summary, distBox,
    codeLink("prediction_machine.sequences.note_tokens.encode", say("note_tokenizer_only_new")),
    codeLink("prediction_machine.sequences.melody.compose"),
  );
  root.append(figure);
  render();
  openLink(sharedState("sequences") || {});

  // A shared link's tune (#sequences?m_start=...&m_temp=1&m_seed=4&m_run=...), composed again with its
  // seed and shown whole, silent until the learner plays it. Each value is checked: a link is untrusted.
  async function openLink(link) {
    if (!/^\d{1,10}$/.test(link.m_seed ?? "") || Number(link.m_seed) >= 2 ** 31) return;
    start.value = (link.m_start ?? "").slice(0, 600);
    const t = Number(link.m_temp);
    if (link.m_temp && t >= 0 && t <= 2) { temp.value = link.m_temp; tempOut.textContent = t.toFixed(1); }
    pickModel(modelPick, link.m_run);
    await modelPick.filled;
    s.seed = Number(link.m_seed);
    if (!(await fetchTune())) return;
    s.shown = s.data.steps.length;
    status.textContent = say("done_n_notes_all", { n: notesShown().notes.length });
    render();
  }
}


// Play [[pitch, beats], ...] from now (the live training samples use it). Returns the notes scheduled.
export function playTune(notes) {
  let t = 0, n = 0;
  for (const [pitch, beats] of notes) { if (tone(pitch, beats, t)) n++; t += beats * SECONDS_PER_BEAT; }
  return n;
}
