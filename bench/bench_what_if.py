"""What the generation experiments cost on SmolLM2: the whole-generation lens, a branch, steering.

    .venv/bin/python bench/bench_what_if.py            # about a minute on 2 cores
    .venv/bin/python bench/bench_what_if.py --quick    # fewer repeats, noisier

Each row times an experiment against the plain generation it extends, both on the textbook
model (where the experiments run), interleaved, medians of the repeats:
- lens: a 32-token greedy generation, then the one hooked pass that reads every token at every
  layer; the row is the lens alone over the generation alone (target: at most 0.10).
- branch: the original run and the forced run over one generation (about 2: two generations).
- steer: one generation with the steering hook at a middle layer over one without (about 1).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "Write one sentence about the sea."  # about 20 tokens with the chat template
NEW_TOKENS = 32
LENS_TARGET = 0.10  # the lens may add at most this fraction to the generation


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict]:
    import torch

    from prediction_machine.experiments import branching, generation_lens, readout, steering
    from prediction_machine.inference.generation import generate
    from prediction_machine.inference.sampling import SamplingParams
    from prediction_machine.model import models

    lm = models.load(probe_layouts=False)
    ids = readout.prompt_ids(lm, PROMPT)
    greedy = SamplingParams(temperature=0.0)
    # stop_ids left empty: every run makes exactly NEW_TOKENS tokens, so the sides compare like for like
    steps = list(generate(lm.model, ids, greedy, NEW_TOKENS, set(), top_n=0))
    gen = [s.id for s in steps]
    layer = lm.config.n_layers // 2
    direction = torch.randn(lm.config.d_model)  # (D,): a steering hook costs the same whatever it adds

    def plain():
        list(generate(lm.model, ids, greedy, NEW_TOKENS, set(), top_n=0))

    def lens():
        generation_lens.generation_lens(lm.model, ids, gen)

    def branched():
        branching.original_run(lm.model, ids, greedy, NEW_TOKENS, set(), None)
        branching.forced_run(lm.model, ids, greedy, NEW_TOKENS, set(), None, {4: gen[4]})

    def steered():
        list(generate(steering.steered(lm.model, layer, direction, 1.0), ids, greedy, NEW_TOKENS, set(),
                      top_n=0))

    times: dict[str, list[float]] = {"plain": [], "lens": [], "branch": [], "steer": []}
    lens()  # warm-up: the first pass allocates the (N, V) buffers
    for _ in range(2 if quick else 5):
        for name, fn in (("plain", plain), ("lens", lens), ("branch", branched), ("steer", steered)):
            times[name].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    L, N, V = lm.config.n_layers, len(gen), lm.config.vocab_size
    return [
        {"benchmark": "what-if lens vs 32-token generation", "ours": med["lens"], "reference": med["plain"],
         "ratio": med["lens"] / med["plain"], "unit": "s",
         "note": f"target <= {LENS_TARGET:.2f}: one hooked pass, then {L}x{N} vectors unembedded ({V})"},
        {"benchmark": "what-if branch vs one generation", "ours": med["branch"], "reference": med["plain"],
         "ratio": med["branch"] / med["plain"], "unit": "s", "note": "two generations: original and forced"},
        {"benchmark": "what-if steered vs plain generation", "ours": med["steer"], "reference": med["plain"],
         "ratio": med["steer"] / med["plain"], "unit": "s", "note": f"a resid hook at layer {layer}"},
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
