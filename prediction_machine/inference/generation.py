"""The generation loop: predict -> sample -> append -> repeat, one `Step` per new token.

It knows token ids only (no text) and is shared by the CLI, the web API, the page and the
benchmarks. A KV cache keeps each step to one new position: the prompt is read once
(prefill), then every new token costs one pass over the weights (decode).

`choose` turns a batch of logits (B, V) into each row's Step pieces: the draw, the model's own
probability and, when asked, the table. generate calls it with one row; the batcher
(engine/batching.py) with every student's row at once, so both give the same tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from prediction_machine import cancel
from prediction_machine.inference.prediction import Prediction, model_probs, predict_rows, scaled_logits
from prediction_machine.inference.sampling import (
    FIRST_LOOK,
    Draw,
    SamplingParams,
    distributions,
    draw_rows,
    make_generator,
)
from prediction_machine.inference.top_tokens import top_ids
from prediction_machine.model.transformer import KVCache, Transformer


@dataclass(frozen=True)
class Step:
    index: int  # 0 for the first new token
    id: int  # the token chosen
    prob: float  # its probability under the sampling settings: what the draw used (1.0 at temperature 0)
    model_prob: float  # its probability under the model alone: softmax at temperature 1, no filters
    prediction: Prediction | None  # the top alternatives it was chosen from; None when top_n is 0
    draw: Draw  # the random number and where it landed
    cached: int  # positions held in the KV cache once this step's forward pass has run
    ms: float  # wall time of the forward pass that produced this step's logits
    finish: str | None  # None, or why generation stops after this step: "stop", "length", "context"
    forced: bool = False  # the caller's token was appended here (generate's `force`); `draw` was drawn


@dataclass(frozen=True)
class Choice:
    draw: Draw  # the token drawn, with u and where it landed
    model_prob: float  # the drawn token's probability under the model alone
    prediction: Prediction | None  # the top-N table, if it was asked for


def choose(logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None],
           top_ns: list[int]) -> list[Choice]:
    """One token per row of logits (B, V), row i drawn with params[i] and generators[i]."""
    scaled = scaled_logits(logits, params)  # (B, V): each row over its temperature, for both below
    probs = distributions(logits, params, scaled)  # (B, V): computed once for the draw and the table
    raw = model_probs(logits)  # (B, V)
    # One top-k for both: the draw lines up the most likely tokens and the table lists them, and
    # temperature and the filters keep the model's order, so the logits' order serves both.
    order = top_ids(logits, max(FIRST_LOOK, *top_ns))  # (B, k), most likely first
    draws = draw_rows(probs, generators, order)
    tables = predict_rows(logits, params, top_ns, probs, raw, order=order, scaled=scaled)
    chosen = raw.gather(-1, torch.tensor([[d.id] for d in draws])).flatten().tolist()  # (B,)
    return [Choice(d, p, t) for d, p, t in zip(draws, chosen, tables, strict=True)]


def check_prompt(prompt_ids: list[int], context: int) -> None:
    """Refuse a prompt the loop cannot continue: empty, or already filling the context."""
    if not prompt_ids:
        raise ValueError("the prompt is empty: at least one token is needed to predict the next")
    if len(prompt_ids) >= context:
        raise ValueError(f"the prompt has {len(prompt_ids)} tokens; the context holds {context}")


def finish_reason(token: int, stop_ids: set[int], new_tokens: int, max_new_tokens: int,
                  length: int, context: int) -> str | None:
    """Why generation ends after this token, or None to go on.

    >>> finish_reason(7, {2}, 3, 64, 40, 2048) is None
    True
    >>> finish_reason(2, {2}, 3, 64, 40, 2048), finish_reason(7, {2}, 64, 64, 90, 2048)
    ('stop', 'length')
    """
    if token in stop_ids:
        return "stop"
    if new_tokens == max_new_tokens:
        return "length"
    if length >= context:
        return "context"
    return None


@torch.inference_mode()
def generate(
    model: Transformer,
    prompt_ids: list[int],
    params: SamplingParams,
    max_new_tokens: int,
    stop_ids: set[int] = frozenset(),
    seed: int | None = None,
    top_n: int = 10,
    use_cache: bool = True,
    should_stop: Callable[[], bool] | None = None,
    force: dict[int, int] | None = None,
) -> Iterator[Step]:
    """Yield one Step per generated token. `should_stop` is checked before every forward pass.

    Each Step carries both probabilities of its token: `prob` (what the draw used) and
    `model_prob` (the model's own, temperature 1). `top_n` rows of alternatives go in
    `Step.prediction`; top_n=0 skips the table (prediction None).
    `force` = {step index: token id} appends the caller's token at those steps, a what-if
    (experiments/branching.py); the draw is still made, so a seeded run keeps its random numbers.
    """
    context = model.cfg.max_seq_len
    check_prompt(prompt_ids, context)
    gen = None if params.greedy else make_generator(seed)
    ids = list(prompt_ids)
    cache = KVCache(model.cfg, 1, min(context, len(ids) + max_new_tokens)) if use_cache else None

    t0 = time.perf_counter()
    x = torch.tensor([ids], dtype=torch.long)  # (1, T): the whole prompt, once
    for index in range(max_new_tokens):
        if should_stop is not None and should_stop():
            return
        cancel.check()  # a caller who no longer wants the answer (a client gone, a shutdown) stops it here
        logits, _ = model(x, cache=cache, last_only=True)  # (1, 1, V)
        cached = int(cache.lengths[0]) if cache is not None else 0
        ms = (time.perf_counter() - t0) * 1000
        (c,) = choose(logits[:, -1], [params], [gen], [top_n])  # logits (1, V)
        d = c.draw
        token, prob, model_prob = d.id, d.prob, c.model_prob
        forced = force is not None and index in force
        if forced:  # the caller's token, with its probabilities under the settings and the model alone
            token = force[index]
            prob = float(distributions(logits[:, -1], [params])[0, token])
            model_prob = float(model_probs(logits[:, -1])[0, token])
        ids.append(token)
        finish = finish_reason(token, stop_ids, index + 1, max_new_tokens, len(ids), context)
        yield Step(index, token, prob, model_prob, c.prediction, d, cached, ms, finish, forced)
        if finish:
            return
        t0 = time.perf_counter()
        # With a cache only the new token goes in; without one the whole sequence is re-read.
        x = torch.tensor([[token]] if cache is not None else [ids], dtype=torch.long)
