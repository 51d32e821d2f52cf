// The head scan: every head of the model switched off in turn (30 × 9 = 270 runs for SmolLM2, batched
// on the server), drawn as a layer × head heatmap of how much the chosen token's probability drops.
// The server streams its progress (POST /api/experiments/scan, text/event-stream); Cancel closes the
// stream, and the server stops within one batch. Picking a cell shows that head's ablation in full.
import { stream } from "../lib/api.js";
import { clear, el, visibleText } from "../lib/dom.js";
import { diverging } from "../lib/draw.js";
import { probability } from "../lib/format.js";
import { words } from "../lib/words.js";
import { heatmap } from "../figures/experiment-heatmap.js";
import { points } from "./experiments-ablation.js";
import { panel } from "./experiments-panel.js";

const say = words("experiments");

export function scanPanel(ctx) {
  const p = panel("xp-scan", say("scan_title"), say("scan_intro"), { "data-tour-stop": "xp-scan" });
  const go = el("button", { type: "button", class: "primary", id: "xp-scan-run", text: say("scan_run") });
  const cancel = el("button", { type: "button", id: "xp-scan-cancel", text: say("cancel"), disabled: true });
  const bar = el("progress", { id: "xp-scan-progress", max: 1, value: 0,
    "aria-label": say("scan_progress") });
  const count = el("span", { class: "note", id: "xp-scan-count" });
  const progress = el("span", { class: "xp-progress", hidden: true }, bar, count); // shown once a scan starts
  p.controls.append(go, cancel, progress);
  let controller = null;
  cancel.addEventListener("click", () => {
    controller?.abort();
    p.status.textContent = say("scan_cancelled");
  });

  function run() {
    return p.run(go, async () => {
      controller = new AbortController();
      cancel.disabled = false;
      progress.hidden = false;
      bar.value = 0;
      count.textContent = "";
      p.status.textContent = say("scan_running");
      let result = null;
      try {
        await stream("/api/experiments/scan", ctx.request(), (name, data) => {
          if (name === "progress") {
            bar.max = data.total;
            bar.value = data.done;
            count.textContent = say("scan_count", { done: data.done, total: data.total });
          } else if (name === "result") {
            result = data;
          } else if (name === "error") {
            throw new Error(data.error);
          }
        }, { signal: controller.signal });
      } finally {
        cancel.disabled = true;
        controller = null;
      }
      if (!result) throw new Error(say("scan_no_result"));
      render(result);
      ctx.share("scan", {});
    });
  }
  go.addEventListener("click", run);

  function render(r) {
    clear(p.result);
    const L = r.prob_after.length, H = r.prob_after[0].length;
    const scale = Math.max(1e-6, ...r.drop.flat().map(Math.abs));
    const token = visibleText(r.target.token);
    const cells = r.drop.flatMap((row, l) => row.map((d, h) => ({ l, h, d })));
    const top = cells.sort((a, b) => b.d - a.d).slice(0, 3);
    p.status.textContent = "";
    p.result.append(el("p", { class: "xp-line", id: "xp-scan-line" }, say("scan_result", { token,
      base: probability(r.base_prob), heads: top.map(({ l, h }) => say("part_head", { layer: l, head: h }))
        .join(", "), after: probability(r.prob_after[top[0].l][top[0].h]) })));
    const map = heatmap({
      id: "xp-scan-map", title: say("scan_map_title", { token }), rows: L, cols: H,
      cell: { w: 30, h: 27 }, // each cell is a button: at least 24 × 24 pixels, with a gap and a border
      rowLabels: Array.from({ length: L }, (_, l) => String(l)),
      colLabels: Array.from({ length: H }, (_, h) => String(h)),
      colour: (l, h) => diverging(r.drop[l][h], scale),
      describe: (l, h) => say("scan_cell", { layer: l, head: h, after: probability(r.prob_after[l][h]),
        change: points(r.base_prob, r.prob_after[l][h]) }),
      data: (l, h) => ({ "data-layer": l, "data-head": h, "data-prob-after": r.prob_after[l][h],
        "data-drop": r.drop[l][h] }),
      onPick: (l, h) => ctx.panels.ablation.ablateHead(l, h),
      caption: say("scan_caption", { scale: (scale * 100).toFixed(1) }),
    });
    p.result.append(el("p", { class: "note" }, say("scan_axes", { layers: L, heads: H })), map.root);
    Object.assign(p.node.dataset, { base: String(r.base_prob), layers: String(L), heads: String(H),
      target: String(r.target.id) });
  }

  return { node: p.node, run };
}
