"""Benchmark (not a test): pre-training speed of the curriculum's tiny models, and their MFU.

    python bench/bench_training.py            # both sizes, one thread (the CLI's default)
    python bench/bench_training.py --threads 2

MFU (model FLOPs utilisation) = 6 x parameters x tokens/s, divided by this machine's fp32
matmul peak, measured in the same run (scale.measured_peak). The "reference" column is the
tokens/s the model would reach if every second ran at that peak, so ratio = MFU.

Sizes: 4 layers / width 128 / context 64 / batch 12 (what the page trains), and 6 layers /
width 384 / context 256 / batch 16 (the "small" preset, meant for a GPU: slow here).
Data is random token ids: the speed of a step does not depend on what the tokens say.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prediction_machine.config import PRESETS  # noqa: E402
from prediction_machine.model.transformer import Transformer  # noqa: E402
from prediction_machine.training.curriculum import scale  # noqa: E402
from prediction_machine.training.curriculum.loop import make_optimizer  # noqa: E402
from prediction_machine.training.curriculum.pretrain import TrainConfig, init_weights, next_token_loss  # noqa: E402

SIZES = [
    # (name, preset, vocab, layers, width, context, batch, timed steps)
    ("tiny: 4 layers, width 128, context 64, batch 12", "tiny", 512, 4, 128, 64, 12, 12),
    ("small: 6 layers, width 384, context 256, batch 16", "small", 4096, 6, 384, 256, 16, 3),
]


def tokens_per_second(cfg, context: int, batch: int, steps: int) -> tuple[float, int]:
    torch.manual_seed(0)
    model = Transformer(cfg)
    init_weights(model, 0)
    opt = make_optimizer(model, TrainConfig())
    params = sum(p.numel() for p in model.parameters())

    def step():
        x = torch.randint(0, cfg.vocab_size, (batch, context))  # (B, T)
        y = torch.randint(0, cfg.vocab_size, (batch, context))  # (B, T)
        loss = next_token_loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: allocations and thread pools
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch * context / (time.perf_counter() - t0), params


def run(quick: bool = False) -> list[dict]:
    peak = scale.measured_peak()
    rows = []
    for name, preset, vocab, layers, width, context, batch, steps in SIZES:
        steps = max(1, steps // 3) if quick else steps
        cfg = replace(PRESETS[preset], vocab_size=vocab, n_layers=layers, d_model=width)
        tps, params = tokens_per_second(cfg, context, batch, steps)
        at_peak = peak / (6 * params)
        rows.append({
            "benchmark": f"pre-training tokens/s, {name}",
            "ours": round(tps, 1),
            "reference": round(at_peak, 1),
            "ratio": round(tps / at_peak, 4),
            "unit": "tokens/s",
            "note": f"{params:,} parameters; ratio = MFU against this machine's fp32 matmul peak of "
                    f"{peak / 1e9:.1f} GFLOP/s measured in the same run, {torch.get_num_threads()} thread(s)",
        })
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the CLI)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for row in run():
        print(json.dumps(row))
