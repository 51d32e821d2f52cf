// The teacher's view (/teacher, classroom mode, the teacher's token only): the round against the model,
// "Show everyone this", the students present with their progress, the training jobs with stop, and the
// CSV exports. Students appear by a public name the server derives from their signed id, and by the
// nickname they chose, always set as text.
import { get, post } from "../lib/api.js";
import { clear, el, errorBox } from "../lib/dom.js";
import { words } from "../lib/words.js";
import { mountRating } from "./teacher-rating.js";
import { mountRound } from "./teacher-round.js";

const say = words("teacher");
const ROSTER_MS = 3000;
const root = document.getElementById("teacher");
document.title = say("page_title");

function section(id, title, ...children) {
  return el("section", { id, "aria-labelledby": `${id}-title` }, el("h2", { id: `${id}-title`, text: title }),
    ...children);
}

// A link copied from the page (its address bar or a share button) may carry the server's address:
// only its path and fragment are sent, and only a link to this server is accepted.
function localLink(text) {
  const url = new URL(text.trim(), location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
}

function mountShow() {
  const link = el("input", { id: "show-link", type: "text", placeholder: "/#attention?layer=3",
    required: true });
  const status = el("div", { class: "show-status", role: "status" });
  const form = el("form", {}, el("label", {}, say("show_label"), link),
    el("button", { type: "submit", id: "show-button", text: say("show_button") }));
  root.append(section("teacher-show", say("show_title"), el("p", { class: "note", text: say("show_intro") }),
    form, status));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(status);
    let local = null;
    try { local = localLink(link.value); } catch { local = null; }
    if (!local) {
      status.append(errorBox(say("show_not_here")));
      return;
    }
    try {
      const push = await post("/api/class/show", { link: local });
      status.textContent = say("show_done", { number: push.number, link: push.link });
    } catch (error) {
      status.append(errorBox(error.message));
    }
  });
}

function progressText(progress) {
  const sections = Object.entries(progress);
  if (!sections.length) return say("no_progress");
  return sections.map(([name, p]) => say(p.tour_done ? "progress_tour_done" : "progress_tour_open",
    { section: name, right: p.questions_right, total: p.questions_total })).join("; ");
}

function mountStudents() {
  const count = el("p", { class: "present-count", role: "status" });
  const body = el("tbody");
  const head = el("tr", {}, ...["col_student", "col_nickname", "col_here", "col_progress"].map((key) =>
    el("th", { scope: "col", text: say(key) })));
  root.append(section("teacher-students", say("students_title"), count,
    el("div", { class: "table-wrap" }, el("table", { class: "students" }, el("thead", {}, head), body))));

  async function refresh() {
    try {
      const r = await get("/api/class/students");
      count.textContent = say("present", { n: r.present });
      clear(body).append(...r.students.map((s) => el("tr", { "data-student": s.student },
        el("td", { text: s.student }),
        el("td", { class: "nickname", text: s.nickname }),
        el("td", { text: say(s.present ? "here_yes" : "here_no") }),
        el("td", { text: progressText(s.progress) }))));
    } catch (error) {
      clear(count).append(errorBox(error.message));
    }
  }
  refresh();
  setInterval(refresh, ROSTER_MS);
}

function mountJobs() {
  const list = el("ul", { class: "jobs" });
  root.append(section("teacher-jobs", say("jobs_title"), list));

  async function refresh() {
    try {
      const { jobs } = await get("/api/curriculum/jobs");
      const running = jobs.filter((j) => ["running", "paused", "queued"].includes(j.status));
      clear(list).append(...(running.length ? running.map((job) => {
        const stop = el("button", { type: "button", text: say("stop_job") });
        stop.addEventListener("click", async () => {
          stop.disabled = true;
          await post(`/api/curriculum/jobs/${job.id}/stop`, {})
            .catch((error) => list.append(errorBox(error.message)));
          refresh();
        });
        return el("li", { "data-job": job.id },
          say("job_line", { kind: job.kind, id: job.id, status: job.status, step: job.last_step?.step ?? 0 }),
          " ", stop);
      }) : [el("li", { text: say("no_jobs") })]));
    } catch (error) {
      clear(list).append(errorBox(error.message));
    }
  }
  refresh();
  setInterval(refresh, ROSTER_MS);
}

function mountExport() {
  const link = (what, text) => el("a", { href: `/api/class/export?what=${what}`,
    download: `class-${what}.csv`, id: `export-${what}`, text });
  const intro = el("p", { class: "note", text: say("export_intro") });
  root.append(section("teacher-export", say("export_title"), intro,
    el("p", {}, link("progress", say("export_progress")), " · ", link("rounds", say("export_rounds")), " · ",
      link("ratings", say("export_ratings")))));
}

root.append(el("h1", { text: say("page_title") }), el("p", { class: "note", text: say("page_intro") }));
mountRound(root);
mountRating(root);
mountShow();
mountStudents();
mountJobs();
mountExport();
root.dataset.ready = "teacher";
