"""The one entry point for every benchmark: runs them and prints one table of ratios.

    .venv/bin/python bench/run.py                       # everything (about 10-15 minutes on 2 cores)
    .venv/bin/python bench/run.py --only engine         # one benchmark module
    .venv/bin/python bench/run.py --only engine,classroom --quick --markdown

Benchmarks (each a module in bench/ exposing `run() -> list[dict]`):
    engine     decode against the fp32 bandwidth bound and transformers, prefill, trace, start-up, memory
    layouts    the layout probe's pick at each row count against the fastest, re-measured; the bandwidth bound
    classroom  served rate vs the raw batched forward, 32 and 100 streaming clients, start-up
    backprop   the backprop playground's updates per second
    training   tiny-model pre-training tokens/s and model-FLOPs utilisation
    experiments  one ablation and one patch against a plain forward pass; the 30 x 9 head scan's time
    what_if    the whole-generation lens, a branch and steering against the generation they extend

Each row is {benchmark, ours, reference, ratio, unit, note}. Both sides of a ratio are
measured in the same run, interleaved, and reported as medians: absolute times on a shared
machine drift, ratios much less. A module that is missing or fails prints a row saying so.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ modules
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the package, without installing it

BENCHMARKS = {
    "engine": "bench_engine",
    "layouts": "bench_layouts",
    "classroom": "bench_classroom",
    "backprop": "bench_backprop",
    "training": "bench_training",
    "experiments": "bench_experiments",
    "what_if": "bench_what_if",
}
COLUMNS = ("benchmark", "ours", "reference", "ratio", "unit", "note")


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def cells(r: dict) -> list[str]:
    out = [fmt(r.get(c)) for c in COLUMNS]
    if r.get("ratio") is not None:
        out[3] = f"{r['ratio']:.2f}x"
    return out


def print_table(rows: list[dict], markdown: bool = False) -> None:
    table = [list(COLUMNS)] + [cells(r) for r in rows]
    if markdown:
        print("| " + " | ".join(table[0]) + " |")
        print("|" + "|".join("---" for _ in COLUMNS) + "|")
        for line in table[1:]:
            print("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |")
        return
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS) - 1)]
    for n, line in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1])
        if n == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 4)


def run_one(name: str, quick: bool) -> list[dict]:
    module_name = BENCHMARKS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        return [{"benchmark": name, "note": f"not available (bench/{module_name}.py is missing)"}]
    fn = getattr(module, "run", None)
    if fn is None:
        return [{"benchmark": name, "note": f"not available (bench/{module_name}.py has no run())"}]
    kwargs = {"quick": quick} if "quick" in inspect.signature(fn).parameters else {}
    t0 = time.perf_counter()
    try:
        rows = fn(**kwargs)
    except Exception as e:  # noqa: BLE001 - one failing benchmark must not hide the others
        traceback.print_exc()
        return [{"benchmark": name, "note": f"failed: {type(e).__name__}: {e}"}]
    print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test, noisier numbers)")
    p.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown (for docs/performance.md)"
    )
    args = p.parse_args(argv)
    names = list(BENCHMARKS) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    rows, before = [], load_average()
    for name in names:
        print(f"[{name}: running ...]", file=sys.stderr)
        rows += run_one(name, args.quick)
    print_table(rows, markdown=args.markdown)
    print(f"\n{before} before the run; {load_average()} after it (an idle machine shows about 0)")
    print(machine())
    return 0


def machine() -> str:
    """Which machine the figures come from: they differ a lot between processors (docs/performance.md)."""
    from prediction_machine.engine.layout_probe import machine as probe_machine

    m = probe_machine()
    return f"processor {m['processor']}, {m['cores']} cores, {m['threads']} torch threads, torch {m['torch']}"


def load_average() -> str:
    """The numbers mean little on a busy machine: print how busy it was."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


if __name__ == "__main__":
    sys.exit(main())
