"""What fine-tuning changed inside, and where a text was learned: the three timings that bound them.

    .venv/bin/python bench/bench_inside.py

Rows (targets in brackets):
  - diff-models of two tiny models, read from their files [<= 1 s];
  - the corpus index of the plays built from nothing: suffix array + 8-word fingerprints [<= 30 s];
    a process then loads it from the cache on disk;
  - a lookup of a 200-character text: matches, sources, memorisation score [<= 100 ms].
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(fn, repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    import os

    from prediction_machine.training.curriculum import weight_change

    weight_change.diff_models("shakespeare-chat", "shakespeare-dpo")  # imports and page cache warm
    s = timed(lambda: weight_change.diff_models("shakespeare-base", "shakespeare-dpo"))
    print(f"diff-models, two tiny models:        {s * 1000:8.1f} ms   (target <= 1000 ms)")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["PREDICTION_MACHINE_CACHE"] = cache  # a cold build: no index on disk yet
        from prediction_machine.training.curriculum import corpus_index
        from prediction_machine.training.curriculum.corpus import shakespeare_plays

        shakespeare_plays()  # reading the plays is the corpus's own cost, not the index's
        index = corpus_index.shakespeare_index()
        print(f"corpus index built ({len(index.text):,} chars): "
              f"{index.build_seconds:8.1f} s    (target <= 30 s)")
        corpus_index._indexes.clear()
        index = corpus_index.shakespeare_index()
        print(f"corpus index loaded from the cache:  {index.build_seconds * 1000:8.1f} ms")
        text = index.text[1_000_000:1_000_200]
        generated = "Romeo:\nWhat shall I do? I will not be the king of the world,\nAnd yet the night " \
                    "is come upon the house of York, and all the rest of you, my lord, be gone."
        for label, t in (("a quoted passage", text), ("a generated-like line", generated[:200])):
            s = timed(lambda t=t: index.source(t), repeat=20)
            print(f"lookup of 200 chars, {label:22s} {s * 1000:6.1f} ms   (target <= 100 ms)")
        del os.environ["PREDICTION_MACHINE_CACHE"]


if __name__ == "__main__":
    main()
