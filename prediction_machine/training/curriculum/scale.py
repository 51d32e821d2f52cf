"""How far this machine is from real pre-training: measured FLOP/s beside published budgets.

Training a transformer costs about 6 x parameters x tokens floating-point operations
(Kaplan et al. 2020: 2 for the forward pass, 4 for the backward). Dividing a published
budget by the FLOP/s this machine reaches on a plain fp32 matrix multiply gives a lower
bound on how long it would take here: real training never runs at the matmul peak.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

YEAR = 365.25 * 24 * 3600

# Published figures, with where they come from.
PUBLISHED = [
    {
        "name": "GPT-2 124M (a reproduction)",
        "parameters": 124e6,
        "tokens": 10e9,
        "flops": 6 * 124e6 * 10e9,
        "source": "Karpathy, llm.c discussion #481 'Reproducing GPT-2 (124M) in llm.c in 90 minutes for $20' "
                  "(10B tokens of FineWeb)",
    },
    {
        "name": "SmolLM2-135M (the model on this page)",
        "parameters": 135e6,
        "tokens": 2e12,
        "flops": 6 * 135e6 * 2e12,
        "source": "Allal et al. 2025, 'SmolLM2: When Smol Goes Big' (arXiv:2502.02737) and the model card: "
                  "135M trained on 2T tokens",
    },
    {
        "name": "A frontier model",
        "parameters": None,
        "tokens": None,
        "flops": 1e25,
        "source": "Epoch AI's 'Notable AI Models' estimates (GPT-4 about 2e25 FLOPs); the EU AI Act (2024) "
                  "uses 1e25 training FLOPs as its threshold for systemic-risk models",
    },
]


def matmul_flops(n: int = 512, seconds: float = 0.3, dtype=torch.float32) -> float:
    """FLOP/s of repeated (n x n) @ (n x n) products: 2 n^3 operations each, timed for ~`seconds`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up: the first call pays for thread-pool start-up
    reps, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / elapsed


@lru_cache(maxsize=1)
def measured_peak() -> float:
    """The best of a few sizes: small matrices under-use the cores, big ones wait on memory."""
    return max(matmul_flops(n, 0.2) for n in (256, 512, 1024))


def about(x: float) -> str:
    """A count read at a glance: two significant figures, and millions or billions in words.

    10_492_468.8 -> 'about 10 million'; 2_345.6 -> 'about 2,300'; 12.34 -> '12'; 3.456 -> '3.5'
    """
    for word, big in (("billion", 1e9), ("million", 1e6)):
        if x >= big:
            return f"about {float(f'{x / big:.2g}'):g} {word}"
    rounded = float(f"{x:.2g}")
    return f"about {rounded:,.0f}" if rounded >= 1000 else f"{rounded:g}"


def human_time(seconds: float) -> str:
    """A duration in the largest unit it fills: 3.3e14 s -> 'about 10 million years' (the decimals of a
    ten-million-year estimate are noise, and '10,492,468.8 years' hides the size behind its digits)."""
    for unit, size in (("years", YEAR), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{about(seconds / size)} {unit}"
    return f"{seconds:.1f} seconds"


def panel(flops_per_s: float | None = None) -> dict:
    """The scale panel: each published budget and how long this machine would need for it."""
    rate = flops_per_s or measured_peak()
    rows = []
    for p in PUBLISHED:
        seconds = p["flops"] / rate
        rows.append({**p, "seconds_here": seconds, "years_here": seconds / YEAR,
                     "time_here": human_time(seconds)})
    return {"flops_per_s": rate, "threads": torch.get_num_threads(),
            "method": "best of fp32 matrix multiplies of 256, 512 and 1024 squared, timed on this machine",
            "rule": "training FLOPs ~ 6 x parameters x tokens", "rows": rows}
