// The teacher's round: start one with a prompt and settings, watch the class's answers come in as three
// bars per word (the class's guesses, the class's draws, the model's probabilities), and the distance
// between the draws and the model in plain words. As more students draw, the blue bars close in on the
// green ones: the model is a distribution, and one answer is one draw.
import { get, post } from "../lib/api.js";
import { clear, el, errorBox, setBusy, visibleText } from "../lib/dom.js";
import { follower } from "../lib/follow.js";
import { int, percent } from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("teacher");
const POLL_MS = 1000;
const EXAMPLE = "The capital of France is";  // text the model reads, the same in every language

function field(label, input) {
  return el("label", {}, label, input);
}

// One row per word: three bars, each with its count or percentage written beside it.
function barCell(kind, share, text) {
  return el("td", { class: "bar-cell" },
    el("span", { class: `bar ${kind}`, style: { width: `${Math.round(share * 100)}%` } }),
    el("span", { class: "count", text }));
}

function bars(tally) {
  const n = tally.answers;
  const head = el("tr", {}, ...["col_word", "col_guesses", "col_draws", "col_model"].map((key) =>
    el("th", { scope: "col", text: say(key) })));
  const rows = tally.rows.map((row) => el("tr", { "data-word": row.word },
    el("td", { class: "word", text: row.word ? visibleText(row.word) : say("blank_word") }),
    barCell("guesses", n ? row.guesses / n : 0, `${int(row.guesses)}`),
    barCell("draws", n ? row.draws / n : 0, `${int(row.draws)}`),
    barCell("model", row.prob, percent(row.prob, 1))));
  const other = el("tr", { class: "other" },
    el("td", { text: say("other_words") }),
    barCell("guesses", n ? tally.guesses_other / n : 0, `${int(tally.guesses_other)}`),
    barCell("draws", n ? tally.draws_other / n : 0, `${int(tally.draws_other)}`),
    barCell("model", tally.prob_other, percent(tally.prob_other, 1)));
  return el("div", { class: "table-wrap" },
    el("table", { class: "bars" }, el("caption", { text: say("bars_caption") }),
      el("thead", {}, head), el("tbody", {}, ...rows, other)));
}

const LEGEND = { guesses: "legend_guesses", draws: "legend_draws", model: "legend_model" };

function legend() {
  return el("p", { class: "legend" }, ...Object.entries(LEGEND).map(([kind, key]) =>
    el("span", {}, el("span", { class: `swatch ${kind}`, "aria-hidden": "true" }), say(key))));
}

function distance(tally) {
  if (!tally.answers) return el("p", { class: "distance", text: say("no_draws_yet") });
  return el("p", { class: "distance" }, say("distance", {
    tv: percent(tally.tv, 1), expected: percent(tally.expected_tv, 1), bound: percent(tally.tv_bound, 1),
    n: tally.answers,
  }));
}

export function mountRound(root) {
  const prompt = el("textarea", { id: "round-prompt", rows: "2", required: true });
  prompt.value = EXAMPLE;
  const temperature = el("input", { id: "round-temperature", type: "number", min: "0", max: "2", step: "0.1",
    value: "1" });
  const topP = el("input", { id: "round-top-p", type: "number", min: "0.05", max: "1", step: "0.05",
    value: "1" });
  const start = el("button", { type: "submit", id: "round-start", text: say("start_round") });
  const stop = el("button", { type: "button", id: "round-stop", text: say("stop_round"), disabled: true });
  const status = el("div", { class: "round-status", role: "status" });
  const live = el("div", { class: "round-live", "aria-live": "off" });
  const form = el("form", { class: "round-start" },
    field(say("prompt_label"), prompt), field(say("temperature_label"), temperature),
    field(say("top_p_label"), topP), start, stop);
  root.append(el("section", { id: "teacher-round", "aria-labelledby": "teacher-round-title" },
    el("h2", { id: "teacher-round-title", text: say("round_title") }),
    el("p", { class: "note", text: say("round_intro") }), form, status, live));

  const round = follower(async (number) => {
    try {
      const r = await get(`/api/class/rounds/${number}`);
      clear(live).append(
        el("h3", { text: say(r.open ? "round_open" : "round_closed", { number: r.number }) }),
        el("p", { class: "round-prompt-shown", text: `${r.prompt} …` }),
        el("p", { class: "note",
          text: say("round_settings", { temperature: r.temperature, top_p: r.top_p }) }),
        el("p", { class: "draw-count", "data-draws": String(r.tally.answers) },
          say("draw_count", { n: r.tally.answers })),
        distance(r.tally), legend(), bars(r.tally));
      live.dataset.round = String(r.number);
      stop.disabled = !r.open;
    } catch (error) {
      clear(status).append(errorBox(error.message));
    }
  }, POLL_MS);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(status);
    setBusy(start, true);
    try {
      const r = await post("/api/class/rounds", { prompt: prompt.value,
        temperature: Number(temperature.value), top_p: Number(topP.value) });
      await round.follow(r.number);
    } catch (error) {
      status.append(errorBox(error.message));
    } finally {
      setBusy(start, false);
    }
  });
  stop.addEventListener("click", async () => {
    if (round.current === null) return;
    try {
      await post(`/api/class/rounds/${round.current}/stop`, {});
      await round.refresh();
    } catch (error) {
      clear(status).append(errorBox(error.message));
    }
  });

  // A teacher who reloads the page finds the latest round where they left it.
  get("/api/class/now").then((now) => { if (now.round) round.follow(now.round.number); }).catch(() => {});
}
