"""Generations first, measured side by side: a generation while heavy work runs, with and without the gate.

In one process (the default model, one batcher, as a server has): a victim's greedy generation is
timed alone, then while `--heavy` threads keep computing traces of a long prompt (what /api/trace
does for a page), once with the gate's share (engine/priority.py) and once with share 1 (heavy
work never steps aside). The three modes take turns, round after round, so a machine whose load
changes meanwhile weighs on all three alike. It prints each mode's median time, the two ratios to
the idle time (want <= 1.5 with the gate), and how many layers a second the heavy work computed.

    .venv/bin/python bench/bench_priority.py              # 5 rounds, 2 heavy threads (heavy_running)
    .venv/bin/python bench/bench_priority.py --rounds 2   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import torch

from prediction_machine import cancel
from prediction_machine.engine import priority
from prediction_machine.engine.batching import Batcher
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model import models

VICTIM = "Name three colours."
HEAVY_TEXT = "The quick brown fox jumps over the lazy dog while the cat watches. " * 12  # ~170 tokens


def victim_seconds(batcher: Batcher, ids: list[int], stop_ids) -> float:
    t0 = time.perf_counter()
    for _ in batcher.generate(ids, SamplingParams(temperature=0), 24, stop_ids):
        pass
    return time.perf_counter() - t0


def heavy_worker(lm, ids: list[int], stop: threading.Event, done: list[int]) -> None:
    """Traces of the long prompt, one after another, stepping aside at every layer as a heavy route does.
    Appends to `done` at each checkpoint: how far the heavy work got, in layers."""
    turn = priority.Turn(stop.is_set)

    def checkpoint() -> bool:
        done.append(1)
        return turn.should_stop()

    token = cancel.stop_when(checkpoint)
    x = torch.tensor([ids])  # (1, T)
    try:
        while not stop.is_set():
            with torch.inference_mode():
                lm.model(x, record=True)
    except cancel.Cancelled:
        pass
    finally:
        cancel.reset(token)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3, help="victim generations per mode and round")
    ap.add_argument("--heavy", type=int, default=2, help="heavy threads (the server's heavy_running)")
    args = ap.parse_args()
    lm = models.load()
    batcher = Batcher(lm.decoder)
    victim, heavy_ids = lm.prompt_ids(VICTIM), lm.tokenizer.encode_ids(HEAVY_TEXT)
    victim_seconds(batcher, victim, lm.stop_ids)  # warm-up
    share = priority.GATE.share
    times: dict[str, list[float]] = {"idle": [], f"gate {share:g}": [], "no gate": []}
    layers: dict[str, list[float]] = {k: [] for k in times}  # heavy layers computed a second
    load = [os.getloadavg()[0]]
    for r in range(args.rounds):
        modes = list(times)[r % 3:] + list(times)[:r % 3]  # each mode goes first in turn
        for mode in modes:
            priority.GATE.share = 1.0 if mode == "no gate" else share
            stop, done = threading.Event(), []
            workers = [] if mode == "idle" else [
                threading.Thread(target=heavy_worker, args=(lm, heavy_ids, stop, done), daemon=True)
                for _ in range(args.heavy)]
            for w in workers:
                w.start()
            time.sleep(0.2 if workers else 0)  # the heavy work is under way before the victim asks
            t0, before = time.perf_counter(), len(done)
            times[mode] += [victim_seconds(batcher, victim, lm.stop_ids) for _ in range(args.runs)]
            layers[mode].append((len(done) - before) / (time.perf_counter() - t0))
            stop.set()
            for w in workers:
                w.join()
            if mode == "no gate" and not done:
                raise SystemExit(f"the heavy threads computed nothing in {mode!r}: see their errors above")
    priority.GATE.share = share
    load.append(os.getloadavg()[0])
    idle = statistics.median(times["idle"])
    print(f"victim: {len(victim)} prompt tokens, 24 new; heavy: {args.heavy} threads tracing "
          f"{len(heavy_ids)} tokens; {args.rounds} rounds x {args.runs} runs; "
          f"torch threads {torch.get_num_threads()}; "
          f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end on {os.cpu_count()} cores")
    for mode, ts in times.items():
        print(f"  {mode:8s} median {statistics.median(ts):.3f} s  ratio {statistics.median(ts) / idle:.2f}  "
              f"heavy layers/s {statistics.median(layers[mode]):.0f}")


if __name__ == "__main__":
    main()
