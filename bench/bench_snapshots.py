"""What snapshot capture adds to pre-training: its cost per step at the default cadence, side by side.

    .venv/bin/python bench/bench_snapshots.py            # about a minute on 2 cores
    .venv/bin/python bench/bench_snapshots.py --quick    # a few seconds, noisier

The shipped base model's recipe (the tiny preset, batch 16, context 128, BPE 512) trains on
random token windows (the cost of a step does not depend on the text) through loop.optimizer_step,
on one thread as the CLI does. Rows interleave, so a busy machine slows both alike:

    step        one training step: forward, backward, clip, AdamW
    snapshot    one snapshots.Recorder.take: the probe text traced, the lens, the head scores on
                4 x 48 repeated tokens, and snapshots.json written
    added       snapshot / (every x step): what capture adds to each step at the default cadence,
                every = snapshots.every(1200) = 30 steps. Target: at most 10%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prediction_machine.config import PRESETS  # noqa: E402
from prediction_machine.inference.tokenizer import Tokenizer  # noqa: E402
from prediction_machine.model.models import shipped_checkpoint  # noqa: E402
from prediction_machine.model.transformer import Transformer  # noqa: E402
from prediction_machine.training.curriculum import pretrain, snapshots  # noqa: E402
from prediction_machine.training.curriculum.loop import make_optimizer, optimizer_step  # noqa: E402
from prediction_machine.training.curriculum.recipes import get  # noqa: E402

TARGET = 0.10  # capture may add at most 10% to a step at the default cadence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = get("shakespeare-base").config
    tok = Tokenizer((shipped_checkpoint("shakespeare-base") / "tokenizer.json").read_text())
    model = Transformer(replace(PRESETS[cfg.model], vocab_size=tok.vocab_size))
    pretrain.init_weights(model, cfg.seed)
    opt = make_optimizer(model, cfg)
    data = torch.randint(0, tok.vocab_size - 3, (200_000,))  # (N,) stand-in token ids
    rounds, steps_per_round = (3, 3) if args.quick else (8, 6)
    step_s, snap_s = [], []
    with tempfile.TemporaryDirectory() as folder:
        recorder = snapshots.Recorder(Path(folder), model, tok, data, cfg.steps)
        for r in range(rounds):
            for i in range(steps_per_round):
                t0 = time.perf_counter()
                x, y = pretrain.get_batch(data, cfg.batch_size, cfg.context, r * 100 + i)  # (B, T) each
                optimizer_step(model, opt, pretrain.next_token_loss(model, x, y), cfg.lr, cfg.grad_clip)
                step_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            recorder.take(r, 1.0)
            snap_s.append(time.perf_counter() - t0)
        size = (Path(folder) / snapshots.FILE).stat().st_size
    step, snap = statistics.median(step_s), statistics.median(snap_s)
    every = recorder.every
    added = snap / (every * step)
    print(f"{'':10}{'median ms':>12}")
    print(f"{'step':10}{step * 1e3:12.1f}")
    print(f"{'snapshot':10}{snap * 1e3:12.1f}   ({snap / step:.2f} x a step)")
    print(f"added: snapshot / ({every} x step) = {added:.1%} per step at the default cadence "
          f"(target <= {TARGET:.0%}: {'met' if added <= TARGET else 'NOT met'})")
    per, n = size / len(recorder.snapshots), snapshots.SNAPSHOTS_PER_RUN + 1
    print(f"snapshots.json: {per / 1e3:.1f} kB a snapshot, {per * n / 1e6:.2f} MB for a run's {n}; "
          f"torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
