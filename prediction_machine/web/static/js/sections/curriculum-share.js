// The curriculum lab's part of a shared link: the settings a teacher would set up before class
// (pre-training steps, tokenizer and vocabulary; what to fine-tune and for how long; the question).
// Runs themselves live on one server's disk, so a link names settings, never results.
import { sharedState, shareState } from "../lib/share.js";

const link = sharedState("curriculum") || {};
const CHECKS = {
  steps: /^\d{1,5}$/, vocab: /^\d{3,4}$/, ft_steps: /^\d{1,4}$/,
  ft_base: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$/, // a run id, as the server checks it
  // the circuits panel: the scrubbed snapshot, the picked head
  circ_step: /^\d{1,3}$/, circ_head: /^L\d+H\d+$/,
};

// The link's value for `key` when it is well-formed (and one of `options`, if given), else `fallback`.
export function linkValue(key, fallback, options = null) {
  const v = link[key];
  if (v === undefined) return fallback;
  if (options) return options.includes(v) ? v : fallback;
  if (CHECKS[key]) return CHECKS[key].test(v) ? v : fallback;
  return v.slice(0, 200);
}

// Write the lab's current settings into the address bar (called on every change of one of them).
export function shareCurriculum() {
  const value = (id) => document.getElementById(id)?.value;
  shareState("curriculum", {
    steps: value("cur-steps"), tokenizer: value("cur-tokenizer"), vocab: value("cur-vocab"),
    ft_base: value("cur-ft-base"), ft_steps: value("cur-ft-steps"), question: value("cur-question"),
    circ_record: value("cur-circ-record") === "live" ? "" : value("cur-circ-record"),
    circ_step: value("cur-circ-step"), circ_head: document.getElementById("cur-circ")?.dataset.head,
  });
}
