"""The engine's weight layouts: did the probe pick the fastest, and how near is one stream to memory's limit?

    .venv/bin/python bench/bench_layouts.py            # about a minute on 2 cores
    .venv/bin/python bench/bench_layouts.py --quick

- For each row count the probe measures (layout_probe.PROBE_ROWS), every candidate layout is timed
  again over all the matrix products of one token, with more repeats than the probe took; the row
  compares the probe's pick with the fastest of this re-measurement (target: within 5%).
- The fp32 bandwidth bound: one token at one row reads every weight once, so no engine can decode
  faster than (2-thread read bandwidth) / (weights' bytes). The bandwidth is measured here, in the
  same run, as a sum over a tensor as large as the weights. bench_engine.py divides the measured
  single-stream decode rate by this bound.
- Where one decode step's time goes: the whole forward pass at one row against its matrix products
  alone (the probe's measurement, in the layout picked for one row), interleaved. The difference is
  the step's small operations: norms, RoPE, attention, cache writes, and the threads' hand-overs.
- A class's step: the products of a 32-row decode step against the machine's fp32 compute peak (a large
  matrix product, measured beside them), the whole 32-row step against its products, and one 32-row
  pass against 32 one-row passes: what batching gains, which bounds the classroom benchmark's scaling.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prediction_machine.engine import fastpath, layout_probe  # noqa: E402
from prediction_machine.model import models  # noqa: E402
from prediction_machine.model.transformer import KVCache  # noqa: E402


def weight_bytes(decoder: fastpath.FusedDecoder) -> int:
    """What one token at one row reads: every matrix once, in fp32 (the embedding row is negligible)."""
    return sum(m.out * m.inp * 4 for m in decoder.matrices())


def read_bandwidths(nbytes: int, repeats: int = 7) -> list[float]:
    """Bytes per second that a sum over `nbytes` of fp32 reads on torch's threads, once per repeat."""
    x = torch.ones(nbytes // 4)  # (n,): as large as the weights, far beyond every cache
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x.sum()
        out.append(nbytes / (time.perf_counter() - t0))
    return out


def read_bandwidth(nbytes: int, repeats: int = 7) -> float:
    """The best of `repeats` reads (read_bandwidths): what the memory gives at its fastest moment."""
    return max(read_bandwidths(nbytes, repeats))


def bound_tokens_per_s(decoder: fastpath.FusedDecoder, repeats: int = 7) -> tuple[float, float]:
    """The fp32 bandwidth bound of one stream (tokens/s), and the bandwidth it comes from (GB/s)."""
    nbytes = weight_bytes(decoder)
    bandwidth = read_bandwidth(nbytes, repeats)
    return bandwidth / nbytes, bandwidth / 1e9


def bench_picks(decoder: fastpath.FusedDecoder, choice: layout_probe.Choice, repeats: int) -> list[dict]:
    """Each probed row count: the pick's time against the fastest candidate's, measured again now."""
    from bench_engine import row

    candidates = decoder.available_layouts()
    for layout in candidates:
        decoder.prepare(layout)
    again = layout_probe.probe(decoder.one_token_products, candidates, repeats=repeats)
    rows = []
    for r in layout_probe.PROBE_ROWS:
        ms = again.timings_ms[r]
        pick, fastest = choice.layouts[r], again.layouts[r]
        why = ", ".join(f"{k} {v:.1f}" for k, v in ms.items())
        name = f"layout at {r} row{'s' if r > 1 else ''}: probe's pick ({pick}) vs fastest ({fastest})"
        rows.append(row(name, ms[pick], ms[fastest], "ms",
                        f"one token's products, re-measured (ms): {why}; probe ({choice.source}) said "
                        + ", ".join(f"{k} {v:.1f}" for k, v in choice.timings_ms.get(r, {}).items())
                        + "; target <= 1.05x"))
    decoder.use(choice)  # drop the losers' copies again
    return rows


def bench_step(lm, decoder: fastpath.FusedDecoder, repeats: int) -> list[dict]:
    """One decode step at one row: the whole forward pass against its products alone, side by side."""
    from bench_engine import interleaved, row

    ids = lm.prompt_ids("What is the capital of France?")
    cache, token = KVCache(lm.config, 1, len(ids) + 64), torch.tensor([ids[-1:]])
    with torch.inference_mode():
        decoder(torch.tensor([ids[:-1]]), cache=cache, last_only=True)

    def step() -> float:
        if int(cache.lengths[0]) >= cache.max_len - 1:
            cache.lengths[:] = len(ids) - 1  # the same positions again: every step sees about as many keys
        with torch.inference_mode():
            t0 = time.perf_counter()
            decoder(token, cache=cache, last_only=True)
            return (time.perf_counter() - t0) * 1000

    pick = decoder.choice.pick(1)

    def products() -> float:
        t0 = time.perf_counter()
        decoder.one_token_products(pick, 1)
        return (time.perf_counter() - t0) * 1000

    ms, x = interleaved({"products": products, "step": step}, repeats * 5)  # x: step / products, per round
    return [row("one decode step at 1 row: whole forward pass vs its matrix products alone", ms["step"],
                ms["products"], "ms", f"layout {pick}, {len(ids)} cached positions; the difference "
                f"({ms['step'] - ms['products']:.1f} ms) is the step's small operations", x["step"])]


def compute_peak(repeats: int = 5) -> float:
    """FLOP/s of a large fp32 matrix product on torch's threads (the best of `repeats`): the most any
    product can do here."""
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats + 1):  # the first warms the library up
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def bench_class_step(lm, decoder: fastpath.FusedDecoder, repeats: int, rows: int = 32) -> list[dict]:
    """A class's decode step (32 rows) against the machine's compute peak and against 32 one-row steps.

    The rows hold 45 to 76 positions, as a class's chat prompts do while they decode. What one pass
    at 32 rows costs against 32 passes at one row bounds how much a server of this decoder gains by
    batching: the classroom benchmark's scaling cannot pass it."""
    from bench_engine import interleaved, row

    cfg = lm.config
    flops = 2 * sum(m.out * m.inp for m in decoder.matrices()) * rows  # one token's products, every row
    pick = decoder.choice.pick(rows)
    big = KVCache(cfg, rows, 128)
    one = KVCache(cfg, 1, 128)

    def step(cache: KVCache, n: int) -> float:
        cache.lengths[:] = torch.arange(n) + 45  # the same positions every time
        token = torch.full((n, 1), 100)
        with torch.inference_mode():
            t0 = time.perf_counter()
            decoder(token, cache=cache, last_only=True)
            return time.perf_counter() - t0

    def products() -> float:
        t0 = time.perf_counter()
        decoder.one_token_products(pick, rows)
        return time.perf_counter() - t0

    peaks = []

    def peak_then_products() -> float:
        peaks.append(compute_peak(2))
        return products()

    t, x = interleaved({"big": lambda: step(big, rows), "one": lambda: step(one, 1),
                        "products": peak_then_products}, repeats)
    peak = max(peaks)
    return [
        row("fp32 compute peak", peak / 1e9, None, "GFLOP/s",
            f"a 2048 x 2048 by 2048 x 2048 product, {torch.get_num_threads()} threads, "
            f"the best of {len(peaks)} runs"),
        row(f"{rows}-row products vs the compute peak", flops / t["products"] / 1e9, peak / 1e9, "GFLOP/s",
            f"every matrix product of one decode step at {rows} rows ({pick} layout)"),
        row(f"one decode step at {rows} rows: whole forward pass vs its matrix products alone",
            t["big"] * 1000, t["products"] * 1000, "ms",
            "45 to 76 cached positions per row; the difference is attention over them, the norms, RoPE and "
            "the cache writes", x["big"] / x["products"]),
        row(f"{rows} rows in one pass vs {rows} one-row passes", rows / t["big"], 1 / t["one"], "tok/s",
            "forward passes alone: how much batching a class gains here, the ceiling of the classroom "
            "benchmark's scaling (target >= 8x there)", rows * x["one"] / x["big"]),
    ]


def run(quick: bool = False) -> list[dict]:
    from bench_engine import row

    lm = models.load(precision="fp32")  # the textbook weights; the fused engine below is this run's own
    decoder = fastpath.FusedDecoder(lm.model)
    choice = layout_probe.tune(decoder)  # read back for this machine, or probed now
    bound, bandwidth = bound_tokens_per_s(decoder, 3 if quick else 7)
    rows = [row("fp32 bandwidth bound of one stream", bound, None, "tok/s",
                f"{weight_bytes(decoder) / 1e6:.0f} MB of weights a token / {bandwidth:.1f} GB/s measured "
                f"(a sum over as many bytes, {torch.get_num_threads()} threads); "
                f"layout probe: {choice.source}, {choice.probe_s or 0:.1f} s")]
    rows += bench_picks(decoder, choice, 3 if quick else 7) + bench_step(lm, decoder, 3 if quick else 7)
    return rows + bench_class_step(lm, decoder, 3 if quick else 7)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    print_table(run(quick="--quick" in sys.argv))
