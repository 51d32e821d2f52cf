"""The generation loop: predict -> sample -> append -> repeat, one `Step` per new token.

It knows token ids only (no text) and is shared by the CLI, the web API, the page and the
benchmarks. A KV cache keeps each step to one new position: the prompt is read once
(prefill), then every new token costs one pass over the weights (decode).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from prediction_machine.inference.prediction import Prediction, predict
from prediction_machine.inference.sampling import Draw, SamplingParams, distribution, draw, make_generator
from prediction_machine.model.transformer import KVCache, Transformer


@dataclass(frozen=True)
class Step:
    index: int  # 0 for the first new token
    id: int  # the token chosen
    prob: float  # its probability under the sampling settings
    prediction: Prediction  # the top alternatives it was chosen from
    draw: Draw  # the random number and where it landed
    cached: int  # positions held in the KV cache once this step's forward pass has run
    ms: float  # wall time of the forward pass that produced this step's logits
    finish: str | None  # None, or why generation stops after this step: "stop", "length", "context"


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
) -> Iterator[Step]:
    """Yield one Step per generated token. `should_stop` is checked before every forward pass."""
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
        logits, _ = model(x, cache=cache, last_only=True)  # (1, 1, V)
        cached = int(cache.lengths[0]) if cache is not None else 0
        ms = (time.perf_counter() - t0) * 1000
        logits = logits[0, -1]  # (V,)
        probs = distribution(logits, params)  # (V,)
        d = draw(probs, gen)
        ids.append(d.id)
        finish = finish_reason(d.id, stop_ids, index + 1, max_new_tokens, len(ids), context)
        yield Step(index, d.id, d.prob, predict(logits, params, top_n, probs), d, cached, ms, finish)
        if finish:
            return
        t0 = time.perf_counter()
        # With a cache only the new token goes in; without one the whole sequence is re-read.
        x = torch.tensor([[d.id]] if cache is not None else [ids], dtype=torch.long)
