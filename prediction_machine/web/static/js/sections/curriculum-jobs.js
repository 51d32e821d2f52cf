// How many training jobs this server runs at once, and the setting that raises it: read from the
// server's own settings (GET /api/settings, declared once in web/settings.py), never typed here.
// In a class of thirty, the rest wait their turn; the note says so before anyone presses Start.
import { get } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { words } from "../lib/words.js";

const say = words("curriculum");
const SETTING = "max_training_jobs"; // its field in web/settings.py; serve reads PREDICTION_MACHINE_<FIELD>

export function jobsNote() {
  const note = el("p", { class: "note", id: "cur-jobs" });
  get("/api/settings").then(({ server }) => {
    note.textContent = say("training_jobs_at_once", { n: server[SETTING], setting: SETTING,
      env: `PREDICTION_MACHINE_${SETTING.toUpperCase()}` });
  }).catch(() => { note.hidden = true; });
  return note;
}
