"""The "what if" experiments' cost against a plain forward pass of the same prompt, on SmolLM2.

    .venv/bin/python bench/bench_experiments.py            # about 1-2 minutes on 2 idle cores
    .venv/bin/python bench/bench_experiments.py --quick    # fewer repeats, noisier

A 20-token prompt, read raw. Each side is timed interleaved with a plain forward pass (A, B,
A, B, ...) and the ratio is the median over rounds of the two measured side by side.

- ablate head 15.4 on a prompt already run: its plain run is remembered (readout.plain_run), so
  the call reruns layers 15.. from the stream entering layer 15 (Transformer.forward_from).
  Target: at most 1.3x a plain forward pass. On a new prompt the plain run comes first (the
  "before" table), so that call costs the plain run plus the rerun.
- patch at layer 15, one position, on prompts already run: the target's stream entering layer 15
  with the source's at that position, run from there. Target: at most 1.3x. On new prompts both
  plain runs come first.
- head scan: all 30 x 9 heads of the 20-token prompt, one batch of 9 per layer. Target: 30 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "When Mary and John went to the store, John gave a drink to her and then they all went"  # 20 tokens
SOURCE, TARGET = "The Eiffel Tower is in the city of", "The Colosseum is in the city of"
LAYER, HEAD = 15, 4
SCAN_TARGET_S = 30.0
RATIO_TARGET = 1.3


def seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def versus(ours, plain, rounds: int) -> tuple[float, float, float]:
    """(median s of ours, median s of plain, median of the per-round ratios), interleaved."""
    ours(), plain()  # warm up
    a, b = [], []
    for _ in range(rounds):
        a.append(seconds(ours))
        b.append(seconds(plain))
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def row(name: str, ours: float, ref: float, ratio: float, note: str) -> dict:
    return {"benchmark": name, "ours": round(ours * 1000, 1), "reference": round(ref * 1000, 1),
            "ratio": round(ratio, 3), "unit": "ms", "note": note}


@torch.inference_mode()
def run(quick: bool = False) -> list[dict]:
    from prediction_machine.experiments import ablation, head_scan, patching, readout
    from prediction_machine.model import models

    lm = models.load(probe_layouts=False)
    model, rounds = lm.model, 3 if quick else 9
    ids = readout.prompt_ids(lm, PROMPT, raw=True)
    idx = torch.tensor([ids])  # (1, T)
    plain = lambda: model(idx, last_only=True)  # noqa: E731 - the reference every row is measured against
    threads = f"{len(ids)}-token prompt, {torch.get_num_threads()} thread(s)"
    rows = []

    part = ablation.Part("head", LAYER, HEAD)
    again = lambda: ablation.ablate(lm, ids, part)  # noqa: E731 - the plain run is remembered after one call
    rows.append(row(f"ablate head {LAYER}.{HEAD}, a prompt already run", *versus(again, plain, rounds),
                    f"reruns layers {LAYER}.., vs a plain forward (target <= {RATIO_TARGET}x); {threads}"))
    first = lambda: (readout.forget_plain_runs(), ablation.ablate(lm, ids, part))  # noqa: E731
    rows.append(row(f"ablate head {LAYER}.{HEAD}, a new prompt", *versus(first, plain, rounds),
                    "the plain run (the 'before' table) + the changed run, vs a plain forward pass"))

    src, tgt = (readout.prompt_ids(lm, p, raw=True) for p in (SOURCE, TARGET))
    tidx = torch.tensor([tgt])  # (1, T)
    plain_target = lambda: model(tidx, last_only=True)  # noqa: E731
    cell = (LAYER, [len(tgt) - 1])
    one = lambda: patching.patch(lm, src, tgt, *cell)  # noqa: E731
    rows.append(row(f"patch at layer {LAYER}, prompts already run", *versus(one, plain_target, rounds),
                    f"reruns layers {LAYER}.. only, vs a plain forward pass of the {len(tgt)}-token target "
                    f"(target <= {RATIO_TARGET}x)"))
    both = lambda: (readout.forget_plain_runs(), patching.patch(lm, src, tgt, *cell))  # noqa: E731
    rows.append(row(f"patch at layer {LAYER}, new prompts", *versus(both, plain_target, rounds),
                    "both plain runs + the patched run, vs a plain forward pass of the target"))

    times = [seconds(lambda: head_scan.head_scan(lm, ids)) for _ in range(1 if quick else 2)]
    scan_s = min(times)
    rows.append({"benchmark": "head scan, 30 x 9 heads", "ours": round(scan_s, 1), "reference": SCAN_TARGET_S,
                 "ratio": round(scan_s / SCAN_TARGET_S, 3), "unit": "s",
                 "note": f"a batch of 9 per layer; reference: the {SCAN_TARGET_S:.0f} s target; {threads}"})
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test, noisier numbers)")
    for r in run(p.parse_args().quick):
        print(r)
