// The checks behind the tour's questions (questions.js): each one reads what this learner's page shows
// now and says whether an answer agrees with it. There is no answer key: the same question has another
// right answer on another page (another prompt, seed, sentence or run).
//
// check(root, answer) -> null when the figure has nothing to check against yet, else
// { ok, shown }: `shown` holds the values the feedback sentence names ({token}, {p}, ...).
// `root` is the section's figure; the inference walkthrough and the attention explorer leave their live
// state on it as root.live, the training view its loss curve's numbers on the chart (data-first/last).
import * as format from "./format.js";
import { words } from "./words.js";

const say = words("questions");

// A token or word as a learner would type it: no surrounding or visible-space marks, any case.
export const plain = (text) => String(text ?? "").replace(/[␣·]/g, " ").trim().toLowerCase();

// ---------------------------------------------------------------- the inference walkthrough
function step3(root) {
  const step = root.live?.steps?.[2];
  if (!step?.prediction?.rows?.length) return null;
  const top = step.prediction.rows.reduce((a, b) => (b.model_prob > a.model_prob ? b : a));
  return { step, top };
}

function topToken(root, answer) {
  const found = step3(root);
  if (!found) return null;
  const { top } = found;
  return { ok: plain(answer) === plain(top.token.text) && plain(answer) !== "",
    shown: { token: top.token.text, p: format.percent(top.model_prob, 1) } };
}

function drewTop(root, answer) {
  const found = step3(root);
  if (!found) return null;
  const same = found.step.id === found.top.id;
  const shown = { drawn: found.step.token.text, token: found.top.token.text,
    why: say(same ? "why_top" : "why_other") };
  return { ok: (answer === "yes") === same, shown };
}

// ---------------------------------------------------------------- the attention explorer
function looksMost(root, answer) {
  const chips = [...root.querySelectorAll(".att-item")];
  const query = chips.find((chip) => chip.classList.contains("query"));
  if (!query) return null;
  const seen = chips.filter((chip) => !chip.classList.contains("future"));
  const best = Math.max(...seen.map((chip) => Number(chip.dataset.weight)));
  const tops = seen.filter((chip) => Number(chip.dataset.weight) >= best - 1e-9); // a tie: either counts
  const label = (chip) => chip.querySelector(".att-text").textContent;
  return { ok: tops.some((chip) => plain(label(chip)) === plain(answer)),
    shown: { query: label(query), word: label(tops[0]), p: format.percent(best, 1) } };
}

export const PREVIOUS_SHARE = 0.4; // the question states it: 40% of each token's weight, on average

// The share of its weight each token gives the token just before it, averaged over the sentence.
export function previousShare(map) {
  const rows = map.slice(1).map((row, i) => row[i]); // row q+1's weight on token q
  return rows.reduce((a, b) => a + b, 0) / rows.length;
}

function previousHead(root, answer) {
  const s = root.live;
  if (!s?.data || s.data.tokens.length < 2) return null;
  const { layer, head } = answer;
  if (!(layer >= 0 && layer < s.data.n_layers && head >= 0 && head < s.data.n_heads)) {
    return { ok: false, shown: { layer, head, p: "" } };
  }
  const entry = s.layerData.get(layer);
  if (!entry) return null; // a long sentence loads one layer at a time
  const map = entry.data.attention.maps[entry.index][entry.data.heads.indexOf(head)];
  const share = previousShare(map);
  return { ok: share >= PREVIOUS_SHARE, shown: { layer, head, p: format.percent(share, 0) } };
}

// ---------------------------------------------------------------- the curriculum's training view
function lossCurve(root) {
  const chart = root.querySelector("[data-chart='pretrain-loss']");
  if (!chart?.dataset.last) return null;
  return { first: Number(chart.dataset.first), last: Number(chart.dataset.last) };
}

function lossDown(root, answer) {
  const curve = lossCurve(root);
  if (!curve) return null;
  return { ok: (answer === "yes") === (curve.last < curve.first),
    shown: { first: curve.first.toFixed(2), last: curve.last.toFixed(2) } };
}

function lastLoss(root, answer) {
  const curve = lossCurve(root);
  if (!curve) return null;
  return { ok: Math.abs(answer - curve.last) <= 0.05 + 1e-9, shown: { last: curve.last.toFixed(2) } };
}

// ---------------------------------------------------------------- the backpropagation playground
function stats(root) {
  const value = (key) => root.querySelector(`[data-stat='${key}']`)?.dataset.value;
  const [train, test, accuracy] = ["train-loss", "test-loss", "train-acc"].map(value);
  if (!train || !test || !accuracy) return null;
  return { train: Number(train), test: Number(test), accuracy: Number(accuracy) };
}

function testLossHigher(root, answer) {
  const s = stats(root);
  if (!s) return null;
  return { ok: (answer === "yes") === (s.test > s.train),
    shown: { train: s.train.toFixed(4), test: s.test.toFixed(4) } };
}

function trainAccuracy(root, answer) {
  const s = stats(root);
  if (!s) return null;
  // To the nearest whole percent, as asked; a number half a point off either way still rounds to it.
  return { ok: Math.abs(answer - s.accuracy * 100) <= 0.5 + 1e-9,
    shown: { accuracy: format.percent(s.accuracy, 1) } };
}

// ---------------------------------------------------------------- the digit drawn pixel by pixel
// The newest pixel's chart: one bar per grey level 0..16 in order, each with its probability (data-prob).
function greyChart(root) {
  const bars = [...root.querySelectorAll("#digit-dist .dist-chart rect.dist-bar")];
  if (!bars.length) return null;
  const probs = bars.map((bar) => Number(bar.dataset.prob));
  const best = Math.max(...probs);
  return { probs, best, tops: probs.flatMap((p, level) => (p === best ? [level] : [])),
    taken: bars.findIndex((bar) => bar.classList.contains("chosen")) };
}

function likeliestGrey(root, answer) {
  const chart = greyChart(root);
  if (!chart) return null;
  const shown = { level: chart.tops[0], p: format.percent(chart.best, 1) };
  return { ok: chart.tops.includes(answer), shown };
}

function tookLikeliest(root, answer) {
  const chart = greyChart(root);
  if (!chart) return null;
  return { ok: (answer === "yes") === chart.tops.includes(chart.taken),
    shown: { taken: chart.taken, level: chart.tops[0] } };
}

// ---------------------------------------------------------------- the experiments' ablation
// The ablation panel keeps its last result's numbers: the first choice's probability before and after.
function ablation(root) {
  const node = root.querySelector("#xp-ablation");
  if (node?.dataset.state !== "done" || !node.dataset.before) return null;
  return { before: Number(node.dataset.before), after: Number(node.dataset.after) };
}

function ablationLower(root, answer) {
  const a = ablation(root);
  if (!a) return null;
  return { ok: (answer === "yes") === (a.after < a.before),
    shown: { before: format.percent(a.before, 1), after: format.percent(a.after, 1) } };
}

function ablationPoints(root, answer) {
  const a = ablation(root);
  if (!a) return null;
  const points = (a.after - a.before) * 100;
  return { ok: Math.abs(answer - points) <= 0.5 + 1e-9, shown: { points: points.toFixed(1) } };
}

// ---------------------------------------------------------------- alignment: you are the human
// After the short DPO run, each rated prompt's card keeps its preferred answer's log-probability.
function ratedUp(root, answer) {
  const cards = [...root.querySelectorAll("#al-rate .probe[data-rated='true']")];
  if (!cards.length) return null;
  const moves = cards.map((c) => [Number(c.dataset.logpBefore), Number(c.dataset.logpAfter)]);
  const up = moves.filter(([before, after]) => after > before).length;
  return { ok: (answer === "yes") === (up === moves.length), shown: { up, n: moves.length } };
}

// The safety table's rows, one per model, each with its share of harmful requests refused. The question
// asks about the three shipped stages; a learner's own run, added as a fourth row, is not among them.
const STAGES = ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo"];

function refusesMost(root, answer) {
  const rows = [...root.querySelectorAll("#al-safety tr[data-refusal]")]
    .filter((r) => STAGES.includes(r.dataset.model));
  if (!rows.length) return null;
  const rates = rows.map((r) => [r.dataset.model, Number(r.dataset.refusal)]);
  const best = Math.max(...rates.map(([, rate]) => rate));
  const tops = rates.filter(([, rate]) => rate >= best - 1e-9).map(([model]) => model); // a tie: either
  const name = (model) => rows.find((r) => r.dataset.model === model).querySelector("strong").textContent;
  return { ok: tops.includes(answer), shown: { stage: name(tops[0]), p: format.percent(best, 0) } };
}

// ---------------------------------------------------------------- inside the stages
// The stage table: each stage's probability for the answer's first token.
function highestStage(root, answer) {
  const rows = [...root.querySelectorAll("#inside-stages tr[data-stage]")];
  if (!rows.length) return null;
  const probs = rows.map((r) => [r.dataset.stage, Number(r.querySelector("[data-prob]").dataset.prob)]);
  const best = Math.max(...probs.map(([, p]) => p));
  const tops = probs.filter(([, p]) => p >= best - 1e-9).map(([stage]) => stage);
  return { ok: tops.includes(answer), shown: { stage: tops[0], p: format.percent(best, 1) } };
}

// The weight-change sentences: how far the weights moved from one stage to the next (data-after names it).
function largerChange(root, answer) {
  const sums = [...root.querySelectorAll("#inside-weights [data-overall][data-after]")];
  if (sums.length < 2) return null;
  const moved = sums.map((p) => [p.dataset.after, Number(p.dataset.overall)]);
  const best = Math.max(...moved.map(([, m]) => m));
  const [[, sft], [, dpo]] = moved; // base -> SFT, then SFT -> DPO
  return { ok: moved.some(([stage, m]) => stage === answer && m >= best - 1e-12),
    shown: { sft: format.percent(sft, 1), dpo: format.percent(dpo, 1) } };
}

// ---------------------------------------------------------------- why it makes things up
// The answer's tokens, each with the probability the model gave it.
function leastLikely(root, answer) {
  const cards = [...root.querySelectorAll("#mu-tokens .mu-token")];
  if (!cards.length) return null;
  const probs = cards.map((c) => Number(c.dataset.prob));
  const least = Math.min(...probs);
  const label = (c) => c.querySelector(".token-text").textContent;
  const lows = cards.filter((c, i) => probs[i] <= least + 1e-12);
  return { ok: plain(answer) !== "" && lows.some((c) => plain(label(c)) === plain(answer)),
    shown: { token: label(lows[0]), p: format.percent(least, 1) } };
}

// The calibration chart's dots: one per question, its first-token probability and whether it was right.
function calibrationDots(root) {
  const dots = [...root.querySelectorAll("#mu-chart .mu-dot")];
  if (!dots.length) return null;
  return dots.map((d) => ({ confidence: Number(d.dataset.confidence), right: d.dataset.right === "true" }));
}

function calibrationRight(root, answer) {
  const dots = calibrationDots(root);
  if (!dots) return null;
  const right = dots.filter((d) => d.right).length;
  return { ok: answer === right, shown: { right, n: dots.length } };
}

export const SURE = 0.5; // the question states it: a first-token probability of 50% or more

function confidentWrong(root, answer) {
  const dots = calibrationDots(root);
  if (!dots) return null;
  const n = dots.filter((d) => !d.right && d.confidence >= SURE).length;
  return { ok: answer === n, shown: { n } };
}

export const CHECKS = {
  "alignment.rated_up": ratedUp,
  "alignment.refuses_most": refusesMost,
  "inside.highest_stage": highestStage,
  "inside.larger_change": largerChange,
  "makes_up.least_likely": leastLikely,
  "makes_up.calibration_right": calibrationRight,
  "makes_up.confident_wrong": confidentWrong,
  "experiments.ablation_lower": ablationLower,
  "experiments.ablation_points": ablationPoints,
  "sequences.likeliest_grey": likeliestGrey,
  "sequences.took_likeliest": tookLikeliest,
  "backprop.test_loss_higher": testLossHigher,
  "backprop.train_accuracy": trainAccuracy,
  "inference.top_token": topToken,
  "inference.drew_top": drewTop,
  "attention.looks_most": looksMost,
  "attention.previous_head": previousHead,
  "curriculum.loss_down": lossDown,
  "curriculum.last_loss": lastLoss,
};
