// The self-attention explorer. One request per sentence brings every layer and head
// (POST /api/attention); hovering words and switching heads or layers then happens here,
// without asking the server again. Long sentences exceed the payload bound and load one layer
// at a time instead. Model text is only ever set as textContent (via el / visibleText).
import { ApiError, get, post } from "../lib/api.js";
import { clear, codeLink, el, errorBox, visibleText } from "../lib/dom.js";
import { AVG, breakdown } from "../figures/attention-breakdown.js";
import { clampIndex, onArrowKeys } from "../lib/draw.js";
import { drawMap, mapFigure } from "../figures/attention-map.js";
import { scrollToSharedSection, sharedState, shareState } from "../lib/share.js";
import { chipColours } from "../figures/attention-colour.js";
import { renderGrid, renderGridSelection } from "../figures/attention-grid.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("attention");
// The view's unit, in the page's language: "word" or "token".
const viewName = (s) => say(s.view === "word" ? "view_word" : "view_token");

const DEFAULT = "The animal didn't cross the street because it was too tired.";
const narrow = window.matchMedia("(max-width: 600px)");

export function mount(root) {
  clear(root);
  root.classList.add("att");
  const s = root.live = { // root.live: what the tour's questions check against (lib/question-checks.js)
    root, data: null, paged: false, layerData: new Map(), view: "word", layer: AVG, head: AVG, query: null,
    text: null, examples: null, prominent: [], loading: 0,
  };

  // ---------------------------------------------------------------- controls
  const exampleRow = el("div", { class: "row att-examples", role: "group",
    "aria-label": say("example_sentences_label") });
  // On a phone the six examples would fill a screen before the sentence: they fold away behind a summary.
  const exampleBox = el("details", { class: "att-examples-box", open: !narrow.matches },
    el("summary", { text: say("example_sentences_label") }), exampleRow);
  const input = el("input", { type: "text", id: "att-text", "data-tour-stop": "att-text", maxlength: "600",
    placeholder: say("type_own_sentence"), autocomplete: "off" });
  const form = el("form", { class: "row att-form" },
    el("label", { for: "att-text", class: "sr-only", text: say("own_sentence") }), input,
    el("button", { type: "submit", class: "primary", text: say("show_attention") }));
  form.addEventListener("submit", (e) => { e.preventDefault(); if (input.value.trim()) load(s,
    input.value).then(() => share(s)); });

  const viewToken = el("input", { type: "radio", name: "att-view", value: "token", id: "att-view-token" });
  const viewWord = el("input", { type: "radio", name: "att-view", value: "word", id: "att-view-word",
    checked: true });
  const layerSel = el("select", { id: "att-layer", "data-tour-stop": "att-layer" });
  const headSel = el("select", { id: "att-head", "data-tour-stop": "att-head" });
  const controls = el("div", { class: "row att-controls" },
    el("fieldset", { class: "att-view" }, el("legend", { text: say("show") }),
      viewWord, el("label", { for: "att-view-word", text: say("words") }),
      viewToken, el("label", { for: "att-view-token", text: say("tokens") })),
    el("span", { class: "att-pick" }, el("label", { for: "att-layer", text: say("layer") }), layerSel),
    el("span", { class: "att-pick" }, el("label", { for: "att-head", text: say("head") }), headSel));
  for (const radio of [viewToken, viewWord]) {
    radio.addEventListener("change", () => { s.view = radio.value; s.query = null; render(s); share(s); });
  }
  layerSel.addEventListener("change", () => select(s, parse(layerSel.value), s.head).then(() => share(s)));
  headSel.addEventListener("change", () => select(s, s.layer, parse(headSel.value)).then(() => share(s)));

  s.ui = {
    exampleRow, input, layerSel, headSel, viewToken, viewWord,
    viewNote: el("p", { class: "note att-view-note" }),
    status: el("p", { class: "note att-status", role: "status" }),
    error: el("div", { class: "att-error" }),
    sentence: el("div", { class: "att-sentence", "data-tour-stop": "att-sentence", role: "group",
      "aria-label": say("sentence_hover_focus_tap") }),
    readout: el("p", { class: "att-readout", "data-tour-stop": "att-readout", "aria-live": "polite" }),
    map: el("canvas", { class: "att-map", width: "260", height: "260", role: "img",
      "aria-label": say("attention_map_loading") }),
    mapNote: el("p", { class: "note" }),
    prominent: el("ul", { class: "att-prominent" }),
    grid: el("div", { class: "att-grid", "data-tour-stop": "att-grid", role: "grid",
      "aria-label": say("every_layer_head") }),
    gridNote: el("p", { class: "note" }),
    deep: el("div", { class: "att-deep-body" }),
  };
  s.ui.map.addEventListener("click", (e) => {
    const n = items(s).length;
    const r = s.ui.map.getBoundingClientRect();
    const row = Math.floor(((e.clientY - r.top) / r.height) * n);
    if (row >= 0 && row < n) setQuery(s, row);
  });
  const deep = el("details", { class: "att-deep" },
    el("summary", { "data-tour-stop": "att-deep", text: say("where_do_these_weights") }),
    s.ui.deep);
  deep.addEventListener("toggle", () => { if (deep.open) breakdown(s, () => items(s)[s.query]); });
  s.ui.deepDetails = deep;

  root.append(
    exampleBox, form, controls, s.ui.viewNote, s.ui.status, s.ui.error,
    s.ui.sentence, s.ui.readout,
    el("div", { class: "att-two" },
      el("div", { class: "att-mapbox figure-box" },
        el("h4", { text: say("whole_map_causal_mask") }), mapFigure(s.ui.map), s.ui.mapNote),
      el("div", { class: "att-probox" },
        el("h4", { text: say("heads_worth_look_measured") }), s.ui.prominent)),
    el("h4", { text: say("all_heads_once") }), s.ui.gridNote, s.ui.grid,
    deep,
  );

  exampleRow.append(el("span", { class: "note", text: say("loading_example_sentences") }));
  s.ui.prominent.append(el("li", { class: "note", text: say("measuring_every_head_example") }));
  const measured = get("/api/attention/examples").then((d) => {
    s.examples = d.examples;
    s.prominent = d.prominent;
    // Start on the head measured to link "it" to "animal", if one was found; else on the average.
    const ref = d.prominent.find((p) => p.kind === "referent");
    if (ref) [s.layer, s.head] = [ref.layer, ref.head];
    renderExamples(s);
    renderProminent(s);
  }).catch((e) => clear(s.ui.prominent).append(errorBox(say("could_not_measure_heads",
    { message: e.message }))));
  // A shared link names the sentence, layer, head, view and word; it wins over the measured default head.
  const link = sharedState("attention");
  const linked = link ? readLink(link) : null;
  const ready = linked ? measured.then(() => Object.assign(s, linked.view)) : measured;
  if (linked && linked.text !== DEFAULT) input.value = linked.text;
  load(s, linked ? linked.text : DEFAULT, { before: ready, query: linked ? linked.query : null })
    .then(() => { if (linked) scrollToSharedSection(); });
}

// A shared link's state, checked: a link is untrusted input, and a bad value falls back to the default.
function readLink(link) {
  const num = (v) => (v === undefined ? null : /^\d{1,3}$/.test(v) ? Number(v) : v === AVG ? AVG : null);
  const view = {};
  if (num(link.layer) !== null) view.layer = num(link.layer);
  if (num(link.head) !== null) view.head = num(link.head);
  if (link.view === "word" || link.view === "token") view.view = link.view;
  const q = num(link.query);
  return { text: (link.sentence || DEFAULT).slice(0, 600), view, query: typeof q === "number" ? q : null };
}

// The view in the address bar, so a copied link opens this sentence, head and word.
function share(s) {
  shareState("attention", { sentence: s.text, layer: s.layer, head: s.head, view: s.view, query: s.query });
}

function parse(v) {
  return v === AVG ? AVG : Number(v);
}

// ---------------------------------------------------------------- data

async function load(s, text, { query = null, before = null } = {}) {
  const ticket = ++s.loading;
  s.ui.status.textContent = say("running_model_sentence");
  clear(s.ui.error);
  s.root.dataset.ready = "";
  try {
    let data, paged = false;
    try {
      [data] = await Promise.all([post("/api/attention", { text, view: "both", grid: true }), before]);
    } catch (e) {
      // Over the payload bound (the server names "layers"): fall back to one layer per request.
      if (!(e instanceof ApiError && e.status === 422 && e.message.startsWith("layers:"))) throw e;
      paged = true;
      const layer = s.layer === AVG ? 0 : s.layer;
      data = await post("/api/attention", { text, view: "both", grid: true, layers: [layer] });
    }
    if (ticket !== s.loading) return;
    s.data = data;
    s.paged = paged;
    s.text = text;
    s.layerData = new Map(data.layers.map((l, i) => [l, { data, index: i }]));
    s.query = query;
    // a shared link may name a layer that is not there
    if (s.layer !== AVG && !(s.layer < data.n_layers)) s.layer = AVG;
    if (s.head !== AVG && !(s.head < data.n_heads)) s.head = AVG;
    fillSelectors(s);
    s.ui.status.textContent = paged
      ? say("n_tokens_too_many", { n: data.tokens.length })
      : say("length_length_all_n", { length: say("n_tokens", { n: data.tokens.length }),
        length2: say("n_words", { n: data.words.length }), n_layers: data.n_layers, n_heads: data.n_heads });
    for (const b of s.ui.exampleRow.querySelectorAll(".att-example")) b.setAttribute("aria-pressed",
      b.textContent === text ? "true" : "false");
    renderGrid(s, (s2, l, h) => select(s2, l, h).then(() => share(s2)));
    render(s);
  } catch (e) {
    if (ticket !== s.loading) return;
    s.ui.status.textContent = "";
    s.ui.error.append(errorBox(e.message));
    s.root.dataset.ready = "error";
  }
}

// A layer that is not loaded yet (paged mode): fetch it once, then it is cached.
async function ensureLayer(s, layer) {
  if (layer === AVG || s.layerData.has(layer)) return true;
  s.ui.status.textContent = say("loading_layer", { layer });
  const text = s.text;
  const data = await post("/api/attention", { text, view: "both", layers: [layer] });
  if (text !== s.text) return false;
  s.layerData.set(layer, { data, index: 0 });
  s.ui.status.textContent = say("layer_loaded", { layer });
  return true;
}

async function select(s, layer, head) {
  s.layer = layer;
  s.head = head;
  s.root.dataset.ready = "";
  try {
    if (!(await ensureLayer(s, layer))) return;
  } catch (e) {
    s.ui.error.append(errorBox(e.message));
    return;
  }
  render(s);
}

function key(s) {
  return s.view === "token" ? "attention" : "word_attention";
}

// The matrix on screen: [query][key] for the chosen layer and head, or an average.
function matrix(s) {
  const d = s.data;
  const k = key(s);
  if (s.layer === AVG && s.head === AVG) return d[k].mean;
  if (s.layer === AVG) return d[k].layer_mean[d.heads.indexOf(s.head)];
  const entry = s.layerData.get(s.layer);
  if (!entry) return null;
  const block = entry.data[k];
  return s.head === AVG ? block.head_mean[entry.index]
    : block.maps[entry.index][entry.data.heads.indexOf(s.head)];
}

function items(s) {
  const d = s.data;
  if (s.view === "token") return d.tokens.map((t, i) => ({ label: visibleText(t.text), tokens: [i] }));
  // Word view: the leading space is the gap between chips; other invisible characters stay visible.
  return d.words.map((w) => ({ label: visibleText(w.text.startsWith(" ") ? w.text.slice(1) : w.text),
    tokens: w.tokens }));
}

function defaultQuery(s, list) {
  const it = list.findIndex((x) => x.label === "it" || x.label === "␣it");
  return it >= 0 ? it : list.length - 1;
}

// ---------------------------------------------------------------- rendering

function fillSelectors(s) {
  const d = s.data;
  const fill = (sel, n, word, current) => {
    clear(sel);
    sel.append(el("option", { value: AVG, text: say(word === "layer" ? "averaged_over_layers"
      : "averaged_over_heads") }));
    const option = (i) => say(word === "layer" ? "layer_n" : "head_n", { layer: i, head: i });
    for (let i = 0; i < n; i++) sel.append(el("option", { value: String(i), text: option(i) }));
    sel.value = String(current);
  };
  fill(s.ui.layerSel, d.n_layers, "layer", s.layer);
  fill(s.ui.headSel, d.n_heads, "head", s.head);
}

function render(s) {
  if (!s.data) return;
  const list = items(s);
  if (s.query === null || s.query >= list.length) s.query = defaultQuery(s, list);
  s.ui.layerSel.value = String(s.layer);
  s.ui.headSel.value = String(s.head);
  s.ui.viewToken.checked = s.view === "token";
  s.ui.viewWord.checked = s.view === "word";
  const split = s.data.words.filter((w) => w.tokens.length > 1).length;
  s.ui.viewNote.textContent = s.view === "word"
    ? say("word_view_split", { n: split })
    : say("token_view_exactly_pieces");

  clear(s.ui.sentence);
  const pieces = (item) => item.tokens.map((t) => visibleText(s.data.tokens[t].text)).join(" | ");
  list.forEach((item, i) => {
    const chip = el("button", {
      type: "button", class: `att-item${item.tokens.length > 1 ? " split" : ""}`, "data-index": String(i),
      title: item.tokens.length > 1 ? say("word_pieces", { n: item.tokens.length, pieces: pieces(item) })
        : null,
    }, el("bdi", { class: "att-text", text: item.label }), el("span", { class: "att-w" }));
    const pick = () => setQuery(s, i);
    chip.addEventListener("mouseenter", pick);
    chip.addEventListener("focus", pick);
    chip.addEventListener("click", () => { pick(); share(s); });
    // One Tab stop for the whole sentence; arrow keys then move from word to word (Home and End too).
    onArrowKeys(chip, (dRow, dCol) => moveChip(s, i + (dCol || dRow)));
    chip.addEventListener("keydown", (e) => {
      if (e.key === "Home" || e.key === "End") { e.preventDefault(); moveChip(s,
        e.key === "Home" ? 0 : list.length - 1); }
    });
    s.ui.sentence.append(chip);
  });
  renderGridSelection(s);
  setQuery(s, s.query);
  if (s.ui.deepDetails.open) breakdown(s, () => items(s)[s.query]);
}

function moveChip(s, i) {
  const chips = s.ui.sentence.querySelectorAll(".att-item");
  const next = chips[clampIndex(i, chips.length)];
  next.focus(); // focus selects it as the query
  share(s);
}

function setQuery(s, q) {
  s.query = q;
  const m = matrix(s);
  if (!m) return;
  const row = m[q];
  const list = items(s);
  const chips = s.ui.sentence.querySelectorAll(".att-item");
  let sum = 0;
  chips.forEach((chip, k) => {
    const w = row[k];
    const future = k > q;
    chip.classList.toggle("query", k === q);
    chip.classList.toggle("future", future);
    chip.tabIndex = k === q ? 0 : -1;
    chip.dataset.weight = String(w);
    // The label's colour follows the background's luminance, so it meets WCAG AA on every weight.
    const { background, text } = chipColours(future ? 0 : w);
    chip.style.background = future ? "" : background;
    chip.style.color = future ? "" : text;
    chip.querySelector(".att-w").textContent = future ? "masked" : pct(w);
    chip.setAttribute("aria-label", `${list[k].label}: ${future ? say("future_masked") : pct(w)}`);
    sum += w;
  });
  const where = whereNow(s);
  const top = row.map((w, k) => [w, k]).filter(([, k]) => k <= q).sort((a, b) => b[0] - a[0]).slice(0, 3);
  const later = list.length - q - 1;
  const reads = top.map(([w, k]) => `“${list[k].label}” ${pct(w)}`).join(", ");
  s.ui.readout.textContent = say("readout", { query: list[q].label, where, top: reads }) +
    say("readout_sum", { n: q + 1, sum: sum.toFixed(3) }) +
    (later ? say("readout_later", { n: later, view: viewName(s) }) : ".");
  Object.assign(s.root.dataset, { ready: "1", layer: String(s.layer), head: String(s.head), view: s.view,
    query: String(q) });
  showMap(s, m, q);
}

// "layer 2, head 1" (or averaged), in the page's language.
const whereNow = (s) => say("where", {
  layer: s.layer === AVG ? say("averaged_over_layers") : say("layer_n", { layer: s.layer }),
  head: s.head === AVG ? say("averaged_over_heads") : say("head_n", { head: s.head }) });

function pct(w) {
  return format.percent(w, w < 0.1 ? 1 : 0);
}

// The selected map, and what its rows and columns are.
function showMap(s, m, q) {
  drawMap(s.ui.map, m, q, { labels: items(s).map((it) => it.label), view: viewName(s), where: whereNow(s) });
  s.ui.mapNote.textContent = say("row_view_reading_column", { view: viewName(s) }) +
    say("grey_triangle_future_masked") +
    say("only_itself_words_before");
}

function renderExamples(s) {
  clear(s.ui.exampleRow);
  const summary = s.ui.exampleRow.parentElement.querySelector("summary");
  summary.textContent = say("example_sentences", { n: s.examples.length });
  s.examples.forEach((ex) => {
    const b = el("button", { type: "button", class: "att-example", title: ex.note, text: ex.text,
      "aria-pressed": ex.text === s.text ? "true" : "false" });
    b.addEventListener("click", () => { s.ui.input.value = ""; load(s, ex.text).then(() => share(s)); });
    s.ui.exampleRow.append(b);
  });
}

function renderProminent(s) {
  clear(s.ui.prominent);
  for (const p of s.prominent) {
    const b = el("button", { type: "button", class: "att-show", text: say("show_layer_layer_head",
      { layer: p.layer, head: p.head }) });
    // The head was measured at one token; the view stays as the learner chose it (words or tokens),
    // and that token's word is selected in the word view. The status line says what changed.
    b.addEventListener("click", async () => {
      const ex = p.example !== null && s.examples ? s.examples[p.example].text : null;
      if (ex && ex !== s.text) {
        s.layer = p.layer;
        s.head = p.head;
        await load(s, ex);
      } else {
        await select(s, p.layer, p.head);
      }
      if (p.query !== null) {
        const q = s.view === "token" ? p.query : s.data.words.findIndex((w) => w.tokens.includes(p.query));
        if (q >= 0) setQuery(s, q);
      }
      s.ui.status.textContent = say("now_showing_layer_layer", { layer: p.layer,
        head: p.head }) + (ex ? say("on_example", { example: ex }) : "") +
        say("view_view_value_selected", { view: viewName(s), value: items(s)[s.query].label });
      share(s);
    });
    s.ui.prominent.append(el("li", {}, el("span", { text: p.caption + " " }), b));
  }
}
