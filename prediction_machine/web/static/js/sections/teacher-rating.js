// The teacher's class rating round: open one (the server draws every pair once, so the whole class rates
// the same answers), watch the class's votes pair by pair ("14 of 20 chose A"), then close the votes and
// start the class's one DPO run on the pooled pairs. When it ends, the same before and after and safety
// table every student's page shows (class-rating.js).
import { get, post } from "../lib/api.js";
import { clear, el, errorBox, setBusy, shownAnswer } from "../lib/dom.js";
import { follower } from "../lib/follow.js";
import { words } from "../lib/words.js";
import { agreementText, runResult, runStatus } from "./class-rating.js";

const say = words("class_rating");
const POLL_MS = 1500;
const ENDED = ["finished", "stopped", "error", "forgotten"];

function table(r) {
  const head = el("tr", {}, ...["col_prompt", "col_a", "col_b", "col_agreement"].map((key) =>
    el("th", { scope: "col", text: say(key) })));
  const rows = r.pairs.map((p) => {
    const count = r.counts[p.pair];
    return el("tr", { "data-pair": String(p.pair), "data-a": String(count.a), "data-b": String(count.b) },
      el("td", { text: p.prompt }),
      ...[0, 1].map((i) => el("td", { class: `answer${count.choice === i ? " picked" : ""}`,
        text: shownAnswer(p.answers[i], p.cut[i]) })),
      el("td", { class: "agreement", text: agreementText(count) }));
  });
  return el("div", { class: "table-wrap" }, el("table", { class: "rating-pairs" },
    el("thead", {}, head), el("tbody", {}, ...rows)));
}

export function mountRating(root) {
  const prompts = el("textarea", { id: "rating-prompts", rows: "3" });
  const temperature = el("input", { id: "rating-temperature", type: "number", min: "0.1", max: "2",
    step: "0.1", value: "1" });
  const open = el("button", { type: "submit", id: "rating-open", text: say("open_button") });
  const train = el("button", { type: "button", id: "rating-train", text: say("train_button"),
    disabled: true });
  const status = el("div", { class: "rating-status", role: "status" });
  const live = el("div", { class: "rating-live", "aria-live": "off" });
  const result = el("div", { class: "rating-result", "aria-live": "polite" });
  const form = el("form", { class: "rating-open" },
    el("label", {}, say("prompts_label"), prompts), el("label", {}, say("temperature_label"), temperature),
    open);
  root.append(el("section", { id: "teacher-rating", "aria-labelledby": "teacher-rating-title" },
    el("h2", { id: "teacher-rating-title", text: say("teacher_title") }),
    el("p", { class: "note", text: say("teacher_intro") }), form, status, live,
    el("p", {}, train), el("p", { class: "note", text: say("rule") }), result));

  let shownRun = null;
  const rating = follower(async (number) => {
    try {
      const r = await get(`/api/class/ratings/${number}`);
      clear(live).append(el("h3", { text: say("round_heading", { number: r.number }) }),
        el("p", { class: "voters", "data-voters": String(r.voters) }, say("voters", { n: r.voters })),
        table(r), el("p", { class: "note", text: say("disagree") }));
      live.dataset.rating = String(r.number);
      train.disabled = Boolean(r.run);
      if (r.run && shownRun !== r.run.job) {
        if (!ENDED.includes(r.run.status)) {
          clear(result).append(el("p", { text: runStatus(r.run) }));
        } else {
          shownRun = r.run.job;
          clear(result).append(runResult(await get(`/api/class/ratings/${r.number}/run`)));
        }
      }
    } catch (error) {
      clear(status).append(errorBox(error.message));
    }
  }, POLL_MS);

  function follow(number) {
    shownRun = null;
    clear(result);
    rating.follow(number);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(status).append(el("p", { class: "note", text: say("drawing") }));
    setBusy(open, true);
    try {
      const lines = prompts.value.split("\n").map((line) => line.trim()).filter(Boolean);
      const r = await post("/api/class/ratings", { temperature: Number(temperature.value),
        ...(lines.length ? { prompts: lines } : {}) });
      clear(status);
      follow(r.number);
    } catch (error) {
      clear(status).append(errorBox(error.message));
    } finally {
      setBusy(open, false);
    }
  });
  train.addEventListener("click", async () => {
    if (rating.current === null) return;
    train.disabled = true;
    try {
      const r = await post(`/api/class/ratings/${rating.current}/train`, {});
      status.textContent = say("pooled", { n: r.pooled.length });
      rating.refresh();
    } catch (error) {
      train.disabled = false;
      clear(status).append(errorBox(error.message));
    }
  });

  // A teacher who reloads the page finds the latest rating round where they left it.
  get("/api/class/now").then((now) => { if (now.rating) follow(now.rating.number); }).catch(() => {});
}
