// Recorded sessions: a generation or a training run saved earlier with `prediction-machine record`
// (prediction_machine/recording.py), replayed on the page when the server cannot keep up with a class.
// The recording holds the very events a live run streams, and the section draws them with the same
// handlers, so the figures are the same; the row says "Recorded" in plain view for as long as they show it.
//
// replayRow(kind, play) -> { node, clear }: `node` is a row (empty until GET /api/recordings lists a
// recording of this kind), `play(recording)` draws one, and `clear()` takes the label away once the
// section shows a live run again.
import { get } from "./api.js";
import { el, errorBox } from "./dom.js";
import { words } from "./words.js";

const say = words("replay");

export function replayRow(kind, play) {
  const id = `replay-${kind}`;
  const select = el("select", { id });
  const button = el("button", { type: "button", "data-replay": kind, text: say("replay") });
  const label = el("p", { class: "replay-note", role: "status", "data-recorded": "" });
  const node = el("div", { class: "replay", hidden: true, "data-replay-row": kind });
  let recordings = [];

  get("/api/recordings").then(({ recordings: all }) => {
    recordings = all.filter((r) => r.kind === kind);
    if (!recordings.length) return;
    select.replaceChildren(...recordings.map((r) => el("option", { value: r.name, text: r.title })));
    node.append(el("label", { for: id, text: say("recorded_session") }), select, button, label);
    node.hidden = false;
  }).catch(() => { /* no recordings offered: the row stays hidden */ });

  button.addEventListener("click", async () => {
    button.disabled = true;
    label.replaceChildren();
    try {
      const recording = await get(`/api/recordings/${encodeURIComponent(select.value)}`);
      await play(recording);
      const when = (recording.recorded_at || "").slice(0, 10);
      label.replaceChildren(el("strong", { class: "replay-label", text: say("recorded") }), " ",
        say("recorded_note", { title: recording.title, date: when, model: recording.model || "" }));
      label.dataset.recorded = recording.title;
    } catch (error) {
      label.replaceChildren(errorBox(error.message));
    } finally {
      button.disabled = false;
    }
  });
  const clear = () => { label.replaceChildren(); label.dataset.recorded = ""; };
  return { node, clear };
}
