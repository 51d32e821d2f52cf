"""Benchmark (not a test): how many of the page's pre-training jobs one server trains at a usable rate.

    python bench/bench_concurrent_training.py                  # 1, 2, 4, 8 and 12 jobs at once, 20 s each
    python bench/bench_concurrent_training.py --seconds 10 --counts 1,2

The server runs each training job as a thread of its own process (web/jobs.py), all sharing
torch's thread pool, so this runs the same thing: N threads, each iterating the real `pretrain`
with the page's settings (PRESETS["live"]), for a fixed time once every job is past its
tokenizer. It prints, for each N, the optimizer steps per second of one job and of all of them
together, and the ratio of one job's rate to a job running alone (measured in the same run).

"Usable" is stated here, not tuned: a learner's run of the page's 300 steps should finish within
about three minutes, so one job needs >= 300 / 180 = 1.7 steps a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prediction_machine.training.curriculum.corpus import shakespeare  # noqa: E402
from prediction_machine.training.curriculum.pretrain import PRESETS, pretrain  # noqa: E402

USABLE_STEPS_PER_S = 300 / 180  # the page's 300 steps within three minutes


def run_jobs(n: int, seconds: float, corpus) -> list[float]:
    """Steps per second of each of n jobs trained at once, over `seconds` after all have started."""
    cfg = replace(PRESETS["live"], steps=100_000)  # the page's evaluations, samples, checkpoints
    ready = threading.Barrier(n + 1)
    stop = threading.Event()
    counts = [0] * n

    def job(i: int) -> None:
        with tempfile.TemporaryDirectory() as folder:
            started = False
            events = pretrain(replace(cfg, seed=i), Path(folder), corpus=corpus, should_stop=stop.is_set)
            for kind, _ in events:
                if kind == "step":
                    if not started:
                        started = True
                        ready.wait()
                    counts[i] += 1
                if stop.is_set():
                    break

    threads = [threading.Thread(target=job, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    ready.wait()  # every job is past its tokenizer and training
    first = list(counts)
    t0 = time.perf_counter()
    time.sleep(seconds)
    done = list(counts)
    elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    return [(b - a) / elapsed for a, b in zip(first, done, strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds for each number of jobs")
    p.add_argument("--counts", default="1,2,4,8,12", help="numbers of jobs at once, comma-separated")
    args = p.parse_args()
    corpus = shakespeare(PRESETS["live"].corpus_chars)
    print(json.dumps({"processor": _processor(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                      "load_average": os.getloadavg()}))
    alone = None
    for n in [int(c) for c in args.counts.split(",")]:
        rates = run_jobs(n, args.seconds, corpus)
        one = sum(rates) / n
        alone = alone or one  # the first count is the baseline: keep it 1
        print(json.dumps({"jobs": n, "steps_per_s_one_job": round(one, 2),
                          "steps_per_s_all": round(sum(rates), 2), "one_job_vs_alone": round(one / alone, 3),
                          "usable": one >= USABLE_STEPS_PER_S,
                          "usable_means": f">= {USABLE_STEPS_PER_S:.2f} steps/s"}))


def _processor() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
