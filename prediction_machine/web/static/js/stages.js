// The six stages of the inference walkthrough, each drawn from API data and nothing else.
import { clear, el, formatProb, svg, tokenChip, visibleProse, visibleText } from "./dom.js";
import { clampIndex, css, diverging, LINE, mix, OKABE_ITO, onArrowKeys, paintHeatmap, SERIES } from "./draw.js";

const label = (token) => (token.partial ? token.text : visibleText(token.text));

// ---------------------------------------------------------------- 1. tokenizer
export function tokenizer(panel, data) {
  clear(panel);
  if (!data) return panel.append(el("p", { class: "note", text: "Type a prompt to see its tokens." }));
  const yours = el("div", { class: "chips", id: "prompt-tokens" }, data.tokens.map((t, i) => tokenChip(t, { extraClass: `c${i % 4}` })));
  panel.append(el("p", {}, el("strong", { id: "token-count", text: String(data.count) }), ` tokens in your text.`), yours);
  const partial = data.tokens.filter((t) => t.partial).length;
  if (partial) {
    panel.append(el("p", { class: "note", text: `${partial} tokens are single bytes of a character (dashed outline, shown as <0x..>): the vocabulary has no piece for the whole character, so it is spelled out in UTF-8 bytes.` }));
  }
  if (data.chat) {
    const added = data.chat.count - data.count;
    panel.append(
      el("p", { class: "note", text: `With the chat template the model reads ${data.chat.count} tokens: ${added} more, marking the system message, your turn and the start of the assistant's turn. Dark chips are control tokens that no typed text can produce.` }),
      el("div", { class: "chips chat-tokens", id: "chat-tokens" }, data.chat.tokens.map((t) => tokenChip(t))),
    );
  }
}

// ---------------------------------------------------------------- 2. embedding
export function embedding(panel, trace) {
  clear(panel);
  const vectors = trace.embedding.vectors;
  const T = vectors.length, D = trace.embedding.dims;
  const flat = vectors.flat().map(Math.abs).sort((a, b) => a - b);
  const scale = flat[Math.floor(flat.length * 0.98)] || 1;
  const rowH = Math.max(2, Math.min(10, Math.floor(160 / T)));
  const canvas = el("canvas", { class: "heatmap", id: "embedding-heatmap", width: D, height: T * rowH, tabindex: 0,
    role: "img", "aria-label": `Heatmap of ${T} token vectors with ${D} numbers each; use the arrow keys to read values` });
  // Shown at a fixed height whatever the model's width, so a narrow model does not make a tall picture.
  canvas.style.height = `${Math.max(48, Math.min(240, T * 8))}px`;
  paintHeatmap(canvas, T, D, (r, d) => diverging(vectors[r][d], scale), { cellH: rowH });
  const readout = el("p", { class: "readout", id: "embedding-readout", "aria-live": "polite", text: "Hover the heatmap to read a number." });
  let cursor = { r: 0, d: 0 };
  const show = () => {
    const token = trace.tokens[cursor.r];
    readout.textContent = `token ${cursor.r} “${label(token)}” (id ${token.id}), dimension ${cursor.d}: ${vectors[cursor.r][cursor.d].toFixed(4)}`;
  };
  canvas.addEventListener("mousemove", (e) => {
    const box = canvas.getBoundingClientRect();
    cursor = { r: Math.min(T - 1, Math.floor(((e.clientY - box.top) / box.height) * T)), d: Math.min(D - 1, Math.floor(((e.clientX - box.left) / box.width) * D)) };
    show();
  });
  onArrowKeys(canvas, (dr, dd) => {
    cursor = { r: clampIndex(cursor.r + dr, T), d: clampIndex(cursor.d + dd, D) };
    show();
  });
  panel.append(
    el("p", { class: "note", text: `Each row is one token's vector: ${D} numbers, orange for positive, blue for negative.` }),
    el("div", { class: "heatmap-wrap" }, canvas), readout,
    projection(trace),
  );
}

function projection(trace) {
  const W = 640, H = 360, pad = 30;
  const points = trace.embedding.projection.points;
  const all = points.flatMap((p) => [p, ...p.neighbours]);
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (y) => H - pad - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "projection", id: "embedding-projection", role: "img",
    "aria-label": "The prompt's tokens and their nearest vocabulary neighbours, projected to two dimensions" });
  const seen = new Set();
  for (const p of points) for (const n of p.neighbours) {
    chart.append(svg("line", { x1: sx(p.x), y1: sy(p.y), x2: sx(n.x), y2: sy(n.y), class: "link" }));
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    chart.append(svg("circle", { cx: sx(n.x), cy: sy(n.y), r: 3, class: "neighbour" },
      svg("title", { text: `${visibleText(n.token.text)} (id ${n.id}), cosine similarity ${n.similarity.toFixed(2)}` })));
    chart.append(svg("text", { x: sx(n.x) + 5, y: sy(n.y) - 4, class: "neighbour-label", text: label(n.token) }));
  }
  points.forEach((p, i) => {
    const token = trace.tokens[i];
    chart.append(svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 5, class: "prompt-point" },
      svg("title", { text: `${visibleText(token.text)} (id ${token.id})` })));
    chart.append(svg("text", { x: sx(p.x) + 6, y: sy(p.y) + 14, class: "prompt-label", text: label(token) }));
  });
  const [e1, e2] = trace.embedding.projection.explained;
  return el("figure", { class: "projection-figure" }, chart,
    el("figcaption", { class: "note", text: `Your tokens (blue) among their nearest vocabulary neighbours (grey, by cosine similarity in all ${trace.model.d_model} dimensions), drawn on the two directions along which the whole vocabulary varies most (PCA: ${(e1 * 100).toFixed(1)}% and ${(e2 * 100).toFixed(1)}% of the variance). Distances in a 2-D picture are only a rough guide.` }));
}

// ---------------------------------------------------------------- 3. transformer
export function transformer(panel, trace) {
  clear(panel);
  const rows = trace.transformer.lens.map((g) => el("tr", {},
    el("td", { class: "num", text: String(g.layer) }),
    el("td", {}, tokenChip(g.top[0].token, { showId: false })),
    el("td", { class: "bar-cell" }, bar(g.top[0].prob), el("span", { class: "num", text: formatProb(g.top[0].prob) })),
    el("td", { class: "runners" }, g.top.slice(1, 4).map((t) => el("span", { class: "runner", text: `${label(t.token)} ${formatProb(t.prob)}` }))),
  ));
  const thumbs = trace.transformer.attention_thumbnails;
  panel.append(
    el("p", { class: "note", text: `One traced pass took ${trace.ms.toFixed(0)} ms. Layers are numbered from 0, as in the code and the attention explorer. Each row reads the residual stream after that layer through the final norm and unembedding: the model's best guess so far for the token after the prompt.` }),
    el("div", { class: "lens-wrap" }, el("table", { class: "lens", id: "logit-lens" },
      el("thead", {}, el("tr", {}, el("th", { class: "num", text: "layer" }), el("th", { text: "best guess" }), el("th", { text: "probability" }), el("th", { text: "runners-up" }))),
      el("tbody", {}, rows))),
  );
  if (thumbs) {
    const grid = el("div", { class: "thumbs", id: "attention-thumbs" });
    thumbs.forEach((m, layer) => grid.append(el("a", { href: "#attention", class: "thumb", title: `Layer ${layer}: attention averaged over heads (row = token attending, column = token attended to)` },
      heat(m), el("span", { text: `L${layer}` }))));
    panel.append(el("p", { class: "note", text: `Attention in each layer, averaged over its ${trace.model.n_heads} heads (darker = more attention; the empty upper triangle is the causal mask). Open the attention explorer for one head at a time.` }), grid);
  } else if (trace.transformer.attention_thumbnails_note) {
    panel.append(el("p", { class: "note", text: `Attention thumbnails are ${trace.transformer.attention_thumbnails_note}.` }));
  }
}

// One layer's attention as a tiny picture; the square root makes weak attention visible.
function heat(matrix) {
  const T = matrix.length;
  const canvas = el("canvas");
  paintHeatmap(canvas, T, T, (q, k) => mix(Math.sqrt(matrix[q][k]), OKABE_ITO.blue));
  return canvas;
}

function bar(p, cls = "") {
  const fill = el("span", { class: `fill ${cls}` });
  fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  return el("span", { class: "bar" }, fill);
}

// ---------------------------------------------------------------- 4. prediction
export function prediction(panel, pred, caption, field = "raw_prob", vocabSize = null) {
  clear(panel);
  const rows = pred.rows.map((r, i) => el("tr", { class: "pred-row", "data-id": r.id },
    el("td", { class: "num", text: String(i + 1) }),
    el("td", {}, tokenChip(r.token)),
    el("td", { class: "bar-cell" }, bar(r[field]), el("span", { class: "num prob", text: formatProb(r[field]) })),
    el("td", { class: "num", text: r.logit.toFixed(2) }),
  ));
  panel.append(
    el("p", { class: "caption", text: caption }),
    el("table", { class: "probs", id: "prediction-table" },
      el("thead", {}, el("tr", {}, el("th", { class: "num", text: "#" }), el("th", { text: "token" }), el("th", { text: "probability" }), el("th", { class: "num", text: "logit" }))),
      el("tbody", {}, rows)),
    el("p", { class: "note", id: "prediction-summary", text: `Everything outside this top ${pred.rows.length}: ${formatProb(Math.max(0, 1 - pred.rows.reduce((s, r) => s + r[field], 0)))}. Entropy of the model's distribution: ${pred.model_entropy_bits.toFixed(2)} bits (0 = certain${vocabSize ? `; ${Math.log2(vocabSize).toFixed(1)} = every token equally likely` : ""}).` }),
  );
}

// ---------------------------------------------------------------- 5. sampling
export function sampling(panel, pred, draw, caption, greedy = false) {
  clear(panel);
  const rows = pred.rows.map((r) => el("tr", { class: `sample-row ${draw && draw.id === r.id ? "chosen" : ""}`, "data-id": r.id },
    el("td", {}, tokenChip(r.token)),
    el("td", { class: "num", text: greedy ? "—" : r.scaled.toFixed(2) }),
    el("td", { class: "bar-cell" }, bar(r.raw_prob, "ghost"), el("span", { class: "num", text: formatProb(r.raw_prob) })),
    el("td", { class: "bar-cell" }, bar(r.prob), el("span", { class: "num sample-prob", text: formatProb(r.prob) })),
    el("td", { class: "num", text: r.cumulative.toFixed(3) }),
  ));
  panel.append(
    el("p", { class: "caption", text: caption }),
    el("table", { class: "probs", id: "sampling-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "token" }), el("th", { class: "num", text: "logit ÷ T" }), el("th", { text: "model's probability" }), el("th", { text: "after settings" }), el("th", { class: "num", text: "cumulative" }))),
      el("tbody", {}, rows)),
    el("p", { class: "note", id: "sampling-summary", text: `${pred.candidates.toLocaleString()} tokens can still be chosen. Entropy after the settings: ${pred.entropy_bits.toFixed(2)} bits.` }),
  );
  panel.append(cumulativeBar(pred, draw));
}

function cumulativeBar(pred, draw) {
  const W = 640, H = 56;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "cumulative", id: "draw-figure", role: "img",
    "aria-label": draw && draw.u !== null && draw.u !== undefined ? `The draw u = ${draw.u.toFixed(4)} lands on ${visibleText(draw.token.text)}` : "The cumulative probability bar" });
  let x = 0;
  pred.rows.forEach((r, i) => {
    const w = r.prob * W;
    if (w <= 0) return;
    chart.append(svg("rect", { x, y: 8, width: w, height: 28, fill: css(SERIES[i % SERIES.length]), class: draw && draw.id === r.id ? "chosen" : "" },
      svg("title", { text: `${visibleText(r.token.text)}: ${formatProb(r.prob)} (from ${r.cumulative - r.prob >= 0 ? (r.cumulative - r.prob).toFixed(3) : 0} to ${r.cumulative.toFixed(3)})` })));
    x += w;
  });
  if (x < W) chart.append(svg("rect", { x, y: 8, width: W - x, height: 28, fill: css(LINE) }, svg("title", { text: "all other tokens" })));
  const text = el("p", { class: "draw-text", id: "draw-text" });
  if (draw && draw.u !== null && draw.u !== undefined) {
    const ux = draw.u * W;
    chart.append(svg("line", { x1: ux, x2: ux, y1: 2, y2: 42, class: "u-marker" }));
    chart.append(svg("text", { x: Math.min(W - 60, ux + 4), y: 52, class: "u-label", text: `u = ${draw.u.toFixed(4)}` }));
    text.append(`The random number u = ${draw.u.toFixed(4)} falls between ${draw.cumulative_before.toFixed(4)} and ${(draw.cumulative_before + draw.prob).toFixed(4)}, the slice of `, tokenChip(draw.token), ` (probability ${formatProb(draw.prob)}).`);
  } else if (draw) {
    text.append("Temperature 0: no random number is drawn; the most likely token, ", tokenChip(draw.token), ", is taken.");
  } else {
    text.append("Set a seed to see where a random draw would land.");
  }
  return el("div", { class: "draw" }, chart, text);
}

// ---------------------------------------------------------------- 6. generation
export function generation(panel, steps, selected, onSelect) {
  clear(panel);
  if (!steps.length) return panel.append(el("p", { class: "note", text: "No tokens generated yet." }));
  const text = steps.map((s) => s.text).join("");
  const last = steps[steps.length - 1];
  const timeline = el("ol", { class: "timeline", id: "timeline", "aria-label": "Generated tokens; choose one to see its distribution" },
    steps.map((s, i) => el("li", {}, el("button", {
      class: `step-chip ${i === selected ? "selected" : ""}`, "aria-pressed": String(i === selected), "data-index": i, "data-id": s.id,
      title: `step ${i + 1}: probability ${formatProb(s.prob)}, ${s.ms.toFixed(0)} ms, ${s.cached} positions cached`,
      onclick: () => onSelect(i),
    }, tokenChip(s.token, { showId: false })))));
  const times = steps.slice(1).map((s) => s.ms).sort((a, b) => a - b);
  const median = times.length ? times[Math.floor(times.length / 2)] : steps[0].ms;
  panel.append(
    el("div", { class: "output", id: "generated-text" }, el("bdi", { text: visibleProse(text) })),
    timeline,
    el("p", { class: "note", id: "loop-stats", text: `${steps.length} tokens. KV cache: ${last.cached} positions held. First step (reading the whole prompt): ${steps[0].ms.toFixed(0)} ms; each later step (one new position): ${median.toFixed(0)} ms median.` }),
  );
}
