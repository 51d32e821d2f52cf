// The curriculum lab: pre-train a tiny GPT live, fine-tune it into an assistant, compare the two.
// Every number comes from the server's training jobs (POST /api/curriculum/pretrain, /finetune, /lora),
// followed as server-sent events (POST /api/curriculum/jobs/{id}/events).
import { get, post, stream } from "../lib/api.js";
import { trainingView } from "../figures/training-view.js";
import * as format from "../lib/format.js";
import { clear, codeLink, el, errorBox, setBusy, svg, tokenChip, visibleProse, visibleText }
  from "../lib/dom.js";
import { costPanel, scalePanel } from "../figures/curriculum-cost.js";
import { linkValue, shareCurriculum } from "./curriculum-share.js";
import { replayRow } from "../lib/replay.js";
import { circuitsPanel } from "./curriculum-circuits.js";
import { jobsNote } from "./curriculum-jobs.js";
import { words } from "../lib/words.js";

const say = words("curriculum");

const API = "/api/curriculum";

const STATS = [["step", say("stat_step")], ["loss", say("stat_loss")], ["params", say("stat_parameters")],
  ["tokens", say("stat_tokens_seen")], ["seconds", say("stat_elapsed")], ["speed", say("stat_speed")],
  ["flops", say("flops_n_tokens")]];

// ----------------------------------------------------------------------------- pre-training

function pretrainPanel(shared) {
  const corpus = el("select", { id: "cur-corpus", "data-tour-stop": "cur-corpus" }, el("option",
    { value: "shakespeare", text: say("shakespeare_plays") }),
    el("option", { value: "text", text: say("my_own_text") }));
  const text = el("textarea", { id: "cur-text", rows: 4, hidden: true, maxlength: 2000000,
    placeholder: say("paste_least_characters_plain") });
  const tokenizer = el("select", { id: "cur-tokenizer" }, el("option", { value: "bpe",
    text: say("bpe_our_own_merges") }),
    el("option", { value: "char", text: say("bytes_only_character_level") }));
  const vocab = el("input", { id: "cur-vocab", type: "number", min: 259, max: 4096, value: linkValue("vocab",
    512) });
  const steps = el("input", { id: "cur-steps", "data-tour-stop": "cur-steps", type: "number", min: 1,
    max: 20000, value: linkValue("steps", 300) });
  tokenizer.value = linkValue("tokenizer", "bpe", ["bpe", "char"]);
  for (const input of [tokenizer, vocab, steps]) input.addEventListener("change", shareCurriculum);
  const start = el("button", { type: "button", class: "primary", "data-action": "start-pretrain",
    "data-tour-stop": "start-pretrain", text: say("start_pretraining") });
  const error = el("div");
  const merges = el("ol", { class: "merges", "aria-label": say("first_merges") });
  const ratio = el("p", { class: "ratio" });
  const view = trainingView({ kind: "pretrain", stats: STATS });

  corpus.addEventListener("change", () => { text.hidden = corpus.value !== "text"; });

  // Runs saved on disk that did not finish (stopped, paused, or cut off by a server restart).
  const saved = el("select", { id: "cur-resume" });
  const resume = el("button", { type: "button", "data-action": "resume-pretrain", text: say("resume") });
  const savedRow = el("div", { class: "row", hidden: true }, el("label", { for: "cur-resume",
    text: say("saved_run") }), saved, resume);
  shared.setResumeOptions = (runs) => {
    clear(saved);
    for (const r of runs.filter((r) => r.kind === "pretrain" && r.status !== "finished")) {
      saved.append(el("option", { value: r.id,
        text: say("saved_run_option", { id: r.id, step: r.step, status: r.status }) }));
    }
    savedRow.hidden = !saved.options.length;
  };
  resume.addEventListener("click", async () => {
    clear(error);
    if (!saved.value) { // the row is hidden then, but a stale page (or a script) may still click
      error.append(errorBox(say("there_no_saved_run")));
      return;
    }
    view.reset();
    try {
      const { job } = await post(`${API}/pretrain`, { resume: saved.value });
      run(job);
    } catch (e) {
      error.append(errorBox(e.message));
    }
  });

  // What a run's events draw besides the training view: the first merges, the tokenizer's ratio and the
  // circuits panel's snapshots. A live job and a recorded run (lib/replay.js) both come through here.
  const drawing = {
    merge: (m) => {
      if (merges.children.length < 24) {
        merges.append(el("li", {}, el("code", { text: visibleText(m.left) }), " + ", el("code",
          { text: visibleText(m.right) }),
          " → ", el("code", { class: "merged", text: visibleText(m.token) }), el("small",
            { text: ` ×${format.int(m.count)}` })));
      }
    },
    tokenizer: (t) => {
      ratio.textContent = say("vocab_size_tokens_vocabulary", { vocab_size: t.vocab_size, merges: t.merges,
        bytes_per_token: t.bytes_per_token.toFixed(2) }) +
        say("per_token_against_character", { train_tokens: format.int(t.train_tokens) }) +
        (t.context < t.context_asked ? say("context_shortened", { context: t.context,
          asked: t.context_asked }) : "");
    },
    start: () => shared.circuits?.live.reset(), // the circuits panel follows the run's snapshots
    step: (d) => shared.circuits?.live.step(d),
    snapshot: (d) => shared.circuits?.live.snapshot(d),
  };

  async function run(job) {
    recorded.clear();
    setBusy(start, true); // the focus stays on the button (a disabled one drops it)
    clear(merges); ratio.textContent = "";
    await view.follow(job, { ...drawing,
      done: (d) => { shared.pretrainDone = d; shared.refreshCost(); },
      end: () => { setBusy(start, false); shared.refreshRuns(); },
    });
  }

  // A recorded pre-training run: no job and no checkpoint, only its events, and the row says "Recorded".
  const recorded = replayRow("pretraining", (recording) => {
    clear(error); clear(merges); ratio.textContent = "";
    view.replay(recording.events, drawing);
  });

  start.addEventListener("click", async () => {
    clear(error);
    view.reset();
    const n = Number(steps.value);
    const every = Math.max(1, Math.round(n / 12)); // about a dozen evaluations and samples per run
    const body = { tokenizer: tokenizer.value, vocab_size: Number(vocab.value), steps: n, eval_every: every,
      sample_every: every };
    if (corpus.value === "text") body.text = text.value;
    try {
      const { job } = await post(`${API}/pretrain`, body);
      run(job);
    } catch (e) {
      error.append(errorBox(e.message));
    }
  });

  const node = el("div", { class: "panel", id: "cur-pretrain", "data-tour-stop": "cur-pretrain" },
    el("h4", { text: say("pretraining_live") }),
    el("p", { text: say("model_starts_random_numbers") }),
    el("div", { class: "row" }, el("label", { for: "cur-corpus", text: say("text") }), corpus, el("label",
      { for: "cur-tokenizer", text: say("tokens") }), tokenizer,
      el("label", { for: "cur-vocab", text: say("vocabulary") }), vocab, el("label", { for: "cur-steps",
        text: say("steps") }), steps, start),
    jobsNote(), text, savedRow, recorded.node, error,
    el("div", { class: "bpe" }, el("h5", { text: say("first_merges_order_they") }), merges, ratio),
    view.node, codeLink("prediction_machine.training.curriculum.pretrain.pretrain"),
      codeLink("prediction_machine.training.curriculum.bpe.train"));
  return { node, run };
}

// ----------------------------------------------------------------------------- fine-tuning

function finetunePanel(shared) {
  const steps = el("input", { id: "cur-ft-steps", type: "number", min: 1, max: 5000,
    value: linkValue("ft_steps", 60) });
  // Which model to start from: the shipped base, or one the learner pre-trained above.
  const from = el("select", { id: "cur-ft-base" }, el("option", { value: "shakespeare-base",
    text: say("shipped_base_model") }));
  const start = el("button", { type: "button", class: "primary", "data-action": "start-finetune",
    "data-tour-stop": "start-finetune", text: say("finetune") });
  const wanted = linkValue("ft_base", "shakespeare-base");
  shared.setBaseOptions = (runs) => {
    const current = from.value !== "shakespeare-base" ? from.value : wanted;
    clear(from).append(el("option", { value: "shakespeare-base", text: say("shipped_base_model") }));
    for (const r of runs.filter((r) => r.kind === "pretrain" && !r.shipped && r.status !== "running")) {
      from.append(el("option", { value: r.id, text: say("my_run_id_step", { id: r.id, step: r.step,
        status: r.status }) }));
    }
    if ([...from.options].some((o) => o.value === current)) from.value = current;
    note.textContent = from.options.length > 1 ? "" : say("pretrain_run_above_even");
  };
  const note = el("p", { class: "note" });
  for (const input of [steps, from]) input.addEventListener("change", shareCurriculum);
  const error = el("div");
  const mask = el("div", { class: "mask", "aria-label": say("loss_mask") });
  const data = el("p", { class: "note" });
  const view = trainingView({ kind: "finetune", stats: STATS });

  get(`${API}/finetune/data`).then((d) => {
    const kinds = Object.entries(d.kinds).map(([k, v]) => say("k_train_train_eval", { k, train: v.train,
      eval: v.eval })).join("; ");
    data.textContent = say("count_conversations_written_project", { count: d.count, kinds });
    if (d.mask) showMask(d.mask);
  }).catch((e) => mask.append(errorBox(e.message)));

  function showMask(tokens) {
    clear(mask);
    for (const t of tokens) mask.append(tokenChip(t, { showId: false,
      extraClass: t.trained ? "trained" : "ignored" }));
  }

  start.addEventListener("click", async () => {
    clear(error);
    view.reset();
    try {
      const n = Number(steps.value);
      const base = from.value;
      const { job } = await post(`${API}/finetune`, { base, steps: n, eval_every: Math.max(1,
        Math.round(n / 6)) });
      setBusy(start, true);
      await view.follow(job, {
        start: (d) => { if (d.mask_example) showMask(d.mask_example); },
        done: (d) => { shared.finetuneDone = d; shared.refreshCost(); shared.compareReady(job.folder); },
        end: () => { setBusy(start, false); shared.refreshRuns(); },
      });
    } catch (e) {
      error.append(errorBox(e.message));
    }
  });

  const node = el("div", { class: "panel", id: "cur-finetune", "data-tour-stop": "cur-finetune" },
    el("h4", { text: say("finetuning_live") }),
    el("p", { text: say("now_pretrained_model_reads") }),
    data, mask,
    el("div", { class: "row" }, el("label", { for: "cur-ft-base", text: say("start_from") }), from,
      el("label", { for: "cur-ft-steps", text: say("steps") }), steps, start), note, error,
    view.node, codeLink("prediction_machine.training.curriculum.finetune.finetune"),
      codeLink("prediction_machine.training.curriculum.finetune.encode"));
  return { node };
}

// ----------------------------------------------------------------------------- base vs tuned

// An answer as one flowing text: each line break shown as ↵ (a barely trained model can answer with
// dozens of empty lines, which would make a box taller than the screen), invisible characters made visible.
const answerText = (answer) => (answer ? visibleProse(answer).replace(/\n/g, "↵ ") : say("empty_answer"));

function comparePanel(shared) {
  const question = el("input", { id: "cur-question", "data-tour-stop": "cur-question", type: "text",
    value: linkValue("question", "Who is Hamlet's mother?"), maxlength: 200 });
  question.addEventListener("change", shareCurriculum);
  const tuned = el("select", { id: "cur-tuned" });
  const go = el("button", { type: "button", "data-action": "compare", text: say("compare") });
  const out = el("div", { class: "compare", "aria-live": "polite" });

  shared.setTunedOptions = (runs) => {
    const current = tuned.value;
    clear(tuned);
    for (const r of runs.filter((r) => r.kind === "finetune" && r.status !== "running")) {
      const loss = r.last_eval ? format.fixed(r.last_eval.eval_loss, 2) : "?";
      const text = say("tuned_option", { id: r.id, shipped: r.shipped ? say("shipped_mark") : "", loss });
      tuned.append(el("option", { value: r.id, text }));
    }
    if (current) tuned.value = current;
    go.disabled = !tuned.options.length;
    if (!tuned.options.length) out.replaceChildren(el("p", { class: "note",
      text: say("finetune_model_above_ship") }));
  };
  shared.compareNow = () => compare();
  shared.compareReady = async (id) => {
    await shared.refreshRuns();
    tuned.value = id;
    compare();
  };

  function column(title, side) {
    const bars = el("table", { class: "dist" }, el("thead", {}, el("tr", {}, el("th",
      { text: say("next_token") }),
      el("th", { class: "num", text: say("p") }), el("th", { text: "" }))),
      el("tbody", {}, side.top.map((r) => el("tr", {},
        el("td", {}, tokenChip(r.token, { showId: false })), el("td", { class: "num",
          text: format.probability(r.prob) }),
        el("td", { class: "barcell" }, el("span", { class: "bar", style: { width: format.percent(r.prob,
          1) } }))))));
    return el("div", { class: "side" }, el("h5", { text: title }), el("p", { class: "answer",
      text: answerText(side.answer) }),
      el("p", { class: "note", text: say("nexttoken_probabilities_first_answer") }), bars);
  }

  async function compare() {
    delete out.dataset.tuned;
    out.replaceChildren(el("p", { class: "note", text: say("comparing") }));
    try {
      // the server puts the tuned model beside the base its run.json records (after a reload too)
      const d = await post(`${API}/compare`, { question: question.value, tuned: tuned.value });
      const base = d.base_name;
      out.dataset.tuned = tuned.value;
      out.dataset.base = base;
      const baseTitle = base === "shakespeare-base" ? say("base_pretrained_only") : say("base_my_run_base",
        { base });
      out.replaceChildren(el("div", { class: "sides" }, column(baseTitle, d.base),
        column(say("tuned_after_finetuning"), d.tuned)),
        el("p", { class: "moved", text: say("finetuning_moved_moved_probability",
          { moved: format.percent(d.moved) }) }));
    } catch (e) {
      out.replaceChildren(errorBox(e.message));
    }
  }
  go.addEventListener("click", compare);

  const node = el("div", { class: "panel", id: "cur-compare", "data-tour-stop": "cur-compare" }, el("h4",
    { text: say("base_vs_tuned_side") }),
    el("div", { class: "row" }, el("label", { for: "cur-question", text: say("question") }), question,
      el("label",
      { for: "cur-tuned", text: say("tuned_model") }), tuned, go),
    out, codeLink("prediction_machine.training.curriculum.finetune.compare"));
  return { node };
}

// ----------------------------------------------------------------------------- LoRA (advanced)

function loraPanel() {
  const start = el("button", { type: "button", "data-action": "start-lora",
    text: say("teach_smollm_talk_like") });
  const stop = el("button", { type: "button", disabled: true, text: say("stop") });
  const status = el("p", { class: "status", role: "status" });
  const rows = el("tbody");
  const answers = {};
  start.addEventListener("click", async () => {
    clear(rows); status.textContent = say("loading_model");
    try {
      const { job } = await post(`${API}/lora`, {});
      start.disabled = true; stop.disabled = false;
      stop.onclick = () => post(`${API}/jobs/${job.id}/stop`, {});
      await stream(`${API}/jobs/${job.id}/events`, { after: 0 }, (name, d) => {
        if (name === "start") status.textContent = say("trainable_parameters_parameters_trained",
          { trainable: format.int(d.trainable), parameters: format.int(d.parameters),
          fraction: format.percent(d.fraction, 2) });
        else if (name === "step") {
          status.textContent = say("lora_step", { step: d.step, steps: d.steps, loss: format.fixed(d.loss, 3),
            seconds: format.seconds(d.seconds) });
        }
        else if (name === "before" || name === "after") {
          if (!answers[d.question]) {
            answers[d.question] = { before: el("td"), after: el("td", { text: "…" }) };
            rows.append(el("tr", {}, el("td", { text: d.question }), answers[d.question].before,
              answers[d.question].after));
          }
          answers[d.question][name].textContent = d.answer;
        } else if (name === "done") status.textContent += ` — ${d.reason}.`;
        else if (name === "error") status.replaceChildren(errorBox(d.error));
      });
    } catch (e) {
      status.replaceChildren(errorBox(e.message));
    } finally {
      start.disabled = false; stop.disabled = true;
    }
  });
  return el("details", { class: "panel advanced", id: "cur-lora" }, el("summary", {}, el("span",
    { class: "badge", text: say("advanced") }), say("finetune_real_model_lora")),
    el("p", { text: say("lora_freezes_all_million") }),
    el("div", { class: "row" }, start, stop), status,
    el("table", { class: "lora" }, el("thead", {}, el("tr", {}, ["question", "before",
      "after"].map((h) => el("th", { text: say(h) })))), rows),
    codeLink("prediction_machine.training.curriculum.lora.LoRALinear"));
}

// ----------------------------------------------------------------------------- mount

export function mount(root) {
  clear(root);
  const shared = { refreshCost: () => {}, setTunedOptions: () => {}, setResumeOptions: () => {},
    setBaseOptions: () => {}, compareReady: () => {} };
  const pre = pretrainPanel(shared);
  shared.circuits = circuitsPanel();
  const fine = finetunePanel(shared);
  const cmp = comparePanel(shared);
  const cost = costPanel(shared);
  shared.refreshRuns = async () => {
    try {
      const { runs } = await get(`${API}/runs`);
      const base = runs.find((r) => r.id === "shakespeare-base");
      if (base) shared.baseRun = base;
      shared.chatRun = runs.find((r) => r.id === "shakespeare-chat");
      shared.runs = runs; // the cost table pairs each run with the one it started from (run.json's base)
      const first = !shared.loadedRuns;
      shared.loadedRuns = true;
      shared.setTunedOptions(runs);
      shared.setResumeOptions(runs);
      shared.setBaseOptions(runs);
      shared.circuits.setRuns(runs);
      shared.refreshCost();
      if (first && shared.chatRun) shared.compareNow(); // the shipped pair, side by side, from the start
    } catch (e) {
      root.append(errorBox(e.message));
    }
  };
  get(`${API}/finetune/data`).then((d) => { shared.ftCount = d.count; }).catch(() => {});
  root.append(pre.node, shared.circuits.node, fine.node, cmp.node, cost, scalePanel(), loraPanel());
  shared.refreshRuns();
  // A job that was running when the page was reloaded: follow it again.
  get(`${API}/jobs`).then(({ jobs }) => {
    const live = jobs.find((j) => j.kind === "pretrain" && (j.status === "running" || j.status === "paused"));
    if (live) pre.run(live);
  }).catch(() => {});
  root.dataset.ready = "curriculum";
}
