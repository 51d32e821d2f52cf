// A student's side of the class (classroom mode only): the teacher's round, a nickname, and the link the
// teacher shows everyone. The page asks GET /api/class/now every few seconds; on a laptop the server has
// no class (404) and this module stops asking at once, leaving the page as it was.
//
// A round asks "What word comes next?": the student types a guess, then the server draws ONE token
// from the model with a seed of the student's own and this panel shows it, with its seed, so the same
// draw can be made again. The student never sees anyone else's answers; the teacher's screen does.
import { get, post } from "../lib/api.js";
import { clear, el, errorBox, setBusy, visibleText } from "../lib/dom.js";
import { percent } from "../lib/format.js";
import { words } from "../lib/words.js";
import { renderRating } from "./class-rating.js";

const say = words("rounds");
const POLL_MS = 2000;
const SEEN_KEY = "prediction-machine:class-push";  // the newest shown link this tab has opened

let panel = null;
let state = { round: null, answered: 0 };

function seenPush() {
  try { return Number(sessionStorage.getItem(SEEN_KEY)) || 0; } catch { return 0; }
}

// A link the teacher showed everyone: open it once. A link into this same page (#section?state) only
// changes the fragment, so the page reloads to draw that state from the start.
function follow(push) {
  if (!push || push.number <= seenPush()) return;
  try { sessionStorage.setItem(SEEN_KEY, String(push.number)); } catch { /* storage off: open it once */ }
  const target = new URL(push.link, location.origin);
  if (target.origin !== location.origin) return;
  const samePage = target.pathname === location.pathname && target.search === location.search;
  location.assign(target.href);
  if (samePage) location.reload();
}

function buildPanel() {
  const guess = el("input", { id: "round-guess", type: "text", autocomplete: "off", required: true });
  const draw = el("button", { type: "submit", id: "round-draw", text: say("draw_button") });
  const form = el("form", { class: "round-form" },
    el("label", { for: "round-guess", text: say("guess_label") }), guess, draw);
  const nick = el("input", { id: "round-nickname", type: "text", autocomplete: "nickname" });
  get("/api/settings").then(({ server }) => {  // the server's own limits, declared once in settings.py
    guess.maxLength = server.round_guess_chars;
    nick.maxLength = server.nickname_chars;
  }).catch(() => {});
  const nickForm = el("form", { class: "round-nickname" },
    el("label", { for: "round-nickname", text: say("nickname_label") }), nick,
    el("button", { type: "submit", text: say("nickname_save") }),
    el("span", { class: "round-nick-status", role: "status" }));
  const details = el("details", { class: "round-details" },
    el("summary", { text: say("panel_title") }),
    el("div", { class: "round-body" },
      el("h2", { id: "round-title", class: "round-title", text: say("question") }),
      el("p", { class: "round-prompt" }),
      form,
      el("div", { class: "round-result", role: "status", "aria-live": "polite" }),
      el("p", { class: "round-waiting", text: say("waiting") }),
      nickForm));
  panel = el("aside", { class: "class-round", "aria-labelledby": "round-title", "data-class-round": "" },
    details);
  document.body.append(panel);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = panel.querySelector(".round-result");
    if (!state.round || !guess.value.trim()) return;
    setBusy(draw, true);
    try {
      showResult(await post(`/api/class/rounds/${state.round.number}/answer`, { guess: guess.value }));
      state.answered += 1;
    } catch (error) {
      clear(result).append(errorBox(error.message));
    } finally {
      setBusy(draw, false);
      draw.disabled = state.answered > 0;
    }
  });
  nickForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = panel.querySelector(".round-nick-status");
    try {
      await post("/api/class/nickname", { nickname: nick.value });
      status.textContent = say("nickname_saved");
    } catch (error) {
      status.textContent = error.message;
    }
  });
}

function showResult(answer) {
  const result = clear(panel.querySelector(".round-result"));
  const token = el("span", { class: "round-token", text: visibleText(answer.token.text) });
  const same = answer.token.text.trim().toLowerCase() === answer.guess.trim().toLowerCase();
  result.append(
    el("p", {}, say("drew", { token, prob: percent(answer.prob, 1) })),
    el("p", { class: "round-seed" }, say("seed_note", { seed: String(answer.seed) })),
    el("p", {}, say(same ? "same_word" : "other_word", { guess: answer.guess })));
}

function render(now) {
  if (!panel) buildPanel();
  const round = now.round;
  const body = panel.querySelector(".round-body");
  const details = panel.querySelector("details");
  const isNew = round && round.number !== state.round?.number;
  const draw = panel.querySelector("#round-draw");
  if (isNew) {
    state = { round, answered: round.mine.length };
    clear(panel.querySelector(".round-result"));
    panel.querySelector("#round-guess").value = "";
    if (round.open && round.answers_left > 0) details.open = true;  // folded once answered
  }
  if (round) state.round = round;
  body.dataset.round = round ? String(round.number) : "";
  panel.querySelector(".round-prompt").textContent = round ? `${round.prompt} …` : "";
  panel.querySelector(".round-form").hidden = !round || !round.open;
  panel.querySelector(".round-waiting").hidden = Boolean(round && round.open);
  draw.disabled = !round || round.answers_left <= 0;
  if (round && round.mine.length && !panel.querySelector(".round-token")) showResult(round.mine.at(-1));
  if (round && !round.open) panel.querySelector(".round-waiting").textContent = say("round_over");
  // A class rating round, when the teacher opened one, above the word round; with no word round at all,
  // the word round's question and its "no round" note step aside for it.
  renderRating(now.rating, body, details);
  const ratingOnly = Boolean(now.rating && !round);
  panel.querySelector("#round-title").hidden = ratingOnly;
  if (ratingOnly) panel.querySelector(".round-waiting").hidden = true;
  const nick = panel.querySelector("#round-nickname");
  if (now.you && document.activeElement !== nick && !nick.value) nick.value = now.you.nickname;
}

async function poll() {
  let now;
  try {
    now = await get("/api/class/now");
  } catch (error) {
    if (error.status === 404 || error.status === 401) return;  // no class on this server: stop asking
    setTimeout(poll, POLL_MS * 2);
    return;
  }
  follow(now.push);
  if (!now.teacher) render(now);
  setTimeout(poll, POLL_MS);
}

poll();
