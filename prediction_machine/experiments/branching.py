"""Branching: force another token at one step of a generation, and let the model go on from there.

One draw changes everything after it. The original run is `generate` itself; the branch is
`generate` with one change (its `force` hook): at step k the token is the one the learner picked
instead of the one drawn. The branch still makes the draw at step k (and throws its token away),
so with a seed both runs use the same random numbers at every step, and forcing the token the
model would have chosen anyway gives back the original run exactly (tests/test_what_if.py holds
that).

    b = branch(lm, ids, SamplingParams(temperature=0), new_tokens=12, step=2, token=1360)
    b.original.text, b.branch.text    # side by side

Both runs use the textbook Transformer, so the probabilities are the ones the other
experiments and the logit lens read. Each step's `prob` is the model's own probability of its
token (softmax at temperature 1, no filters): a forced token has one too, even one that top-k
or top-p would have filtered out.
"""

from __future__ import annotations

from dataclasses import dataclass

from prediction_machine.experiments.readout import token
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams

TOP = 5  # alternatives shown beside each step


@dataclass(frozen=True)
class Chosen:
    id: int  # the token this step appended
    prob: float  # its probability under the model alone (softmax at temperature 1)
    top: list[tuple[int, float]]  # the TOP most likely tokens at this step and their probabilities
    forced: bool = False  # True at the step where the learner picked the token


@dataclass(frozen=True)
class Run:
    steps: list[Chosen]
    text: str  # the generated text, stop token left out


@dataclass(frozen=True)
class Branch:
    original: Run
    branch: Run
    step: int  # 0-based index of the forced step
    forced: int  # the token id forced there

    def to_json(self, tokenizer) -> dict:
        def run_json(r: Run) -> dict:
            steps = [{**token(tokenizer, s.id), "prob": s.prob, "forced": s.forced,
                      "top": [{**token(tokenizer, i), "model_prob": p} for i, p in s.top]}
                     for s in r.steps]
            return {"steps": steps, "text": r.text}

        return {"original": run_json(self.original), "branch": run_json(self.branch),
                "step": self.step, "forced": token(tokenizer, self.forced)}


def forced_run(model, prompt_ids: list[int], params: SamplingParams, new_tokens: int,
               stop_ids: set[int], seed: int | None, force: dict[int, int]) -> list[Chosen]:
    """`generate` itself with `force` = {step: token id} replacing the draw at those steps."""
    return [Chosen(s.id, s.model_prob, [(r.id, r.model_prob) for r in s.prediction.rows], s.forced)
            for s in generate(model, prompt_ids, params, new_tokens, stop_ids, seed, top_n=TOP, force=force)]


def original_run(model, prompt_ids, params, new_tokens, stop_ids, seed) -> list[Chosen]:
    """The unforced run, from `generate` itself, in the branch's terms."""
    return forced_run(model, prompt_ids, params, new_tokens, stop_ids, seed, {})


def run_text(tokenizer, steps: list[Chosen], stop_ids: set[int]) -> str:
    return tokenizer.decode([s.id for s in steps if s.id not in stop_ids])


def branch(lm, prompt_ids: list[int], params: SamplingParams, new_tokens: int, step: int,
           token: int | None = None, seed: int | None = None, rank: int | None = None) -> Branch:
    """The generation as it ran, and the same generation with a token forced at `step` (0-based).

    The token is given by id (`token`) or by its place in that step's table (`rank`, 1 = the
    most likely, up to TOP). Raises ValueError when the step is past the end of the original run
    or the token is not in the vocabulary: a branch needs a step the original reached.
    """
    model, vocab = lm.model, lm.config.vocab_size
    if (token is None) == (rank is None):
        raise ValueError("give the forced token either by id or by rank, not both")
    if token is not None and not 0 <= token < vocab:
        raise ValueError(f"token {token} is outside the vocabulary of {vocab}")
    if rank is not None and not 1 <= rank <= TOP:
        raise ValueError(f"rank {rank} is outside the table shown at each step (1 to {TOP})")
    if not 0 <= step < new_tokens:
        raise ValueError(f"step {step} is outside the {new_tokens} new tokens (0 to {new_tokens - 1})")
    original = original_run(model, prompt_ids, params, new_tokens, lm.stop_ids, seed)
    if step >= len(original):
        raise ValueError(f"the original generation stopped after {len(original)} tokens: "
                         f"step {step} is past its end")
    if token is None:
        token = original[step].top[rank - 1][0]
    forced = forced_run(model, prompt_ids, params, new_tokens, lm.stop_ids, seed, {step: token})
    return Branch(Run(original, run_text(lm.tokenizer, original, lm.stop_ids)),
                  Run(forced, run_text(lm.tokenizer, forced, lm.stop_ids)), step, token)
