// The learner's own runs of the two sequence models, as the figures' model lists: a live run is saved on
// the server (GET /api/sequences/runs), so after a reload it still draws or composes. Every list asks the
// server once, and again when a run finishes (runsChanged).
import { get } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { words } from "../lib/words.js";

const say = words("sequences");
export const CHANGED = "pm-seq-runs";  // a live run finished: every picker asks the server again
let listed = null;  // one request for all the pickers

export function runsChanged() {
  listed = null;
  document.dispatchEvent(new Event(CHANGED));
}

export function myRuns() {
  listed ??= get("/api/sequences/runs").then((d) => d.runs).catch((e) => { listed = null; throw e; });
  return listed;
}

export const runLabel = (r) => say("my_run_steps", { id: r.id, n: r.step ?? 0 });

// A <select> of the shipped model and the learner's runs of this kind ("" = the shipped model).
export function modelPicker(kind, id, { onChange = () => {} } = {}) {
  const shipped = () => el("option", { value: "", text: say("the_shipped_model") });
  const select = el("select", { id, class: "seq-model-pick", "data-kind": kind }, shipped());
  select.addEventListener("change", () => onChange(select.value));
  const fill = async () => {
    let runs;
    try { runs = (await myRuns()).filter((r) => r.kind === kind); } catch { return; }
    const keep = select.dataset.want ?? select.value;
    select.replaceChildren(shipped(), ...runs.map((r) => el("option", { value: r.id, text: runLabel(r) })));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
    delete select.dataset.want;
    select.dataset.ready = String(runs.length);
  };
  select.filled = fill();  // a shared link's run is chosen once the list has arrived
  document.addEventListener(CHANGED, fill);
  return select;
}

// Choose a run before the list has arrived (a shared link): kept until the list holds it.
export function pickModel(select, run) {
  if (!run) return;
  if ([...select.options].some((o) => o.value === run)) select.value = run;
  else select.dataset.want = run;
}
