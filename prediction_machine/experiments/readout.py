"""What every experiment reads out of a run: the prompt's ids, the next-token table, token objects.

The experiments compare two runs of the same model (before and after a change), so they share
one way of turning a prompt into ids and one way of showing a next-token distribution.

    ids = prompt_ids(lm, "The Eiffel Tower is in the city of", raw=True)
    probs = next_probs(lm.model, ids)                    # (V,) softmax at temperature 1
    top_tokens(probs, lm.tokenizer, k=3)
    # -> [{"id": 7042, "token": " Paris", "model_prob": 0.61}, ...]
"""

from __future__ import annotations

import torch

from prediction_machine.memo import Memo
from prediction_machine.model.hooks import Hooks

TOP = 10  # rows of the next-token table an experiment reports by default


def prompt_ids(lm, prompt: str, raw: bool = False) -> list[int]:
    """The ids the model reads, as `generate` builds them: raw=False wraps the chat template.

    Raises ValueError when there is nothing to read or it does not fit the model's context.
    """
    ids = lm.prompt_ids(prompt, chat=not raw)
    check_ids(ids, lm.config.max_seq_len)
    return ids


def check_ids(ids: list[int], context: int) -> None:
    """An experiment needs at least one token and at most the model's context."""
    if not ids:
        raise ValueError("the prompt is empty: give some text")
    if len(ids) > context:
        raise ValueError(f"the prompt is {len(ids)} tokens; the model's context is {context}")


def token(tokenizer, i: int) -> dict:
    """A token object as every answer shows it: {"id": 7042, "token": " Paris"}."""
    return {"id": int(i), "token": tokenizer.token(int(i)).text}


def texts(tokenizer, ids: list[int]) -> list[dict]:
    """The prompt's tokens as token objects, so a page can label positions."""
    return [token(tokenizer, i) for i in ids]


@torch.inference_mode()
def next_logits(model, ids: list[int], hooks: Hooks | None = None) -> torch.Tensor:
    """The scores for the token after the last one: (V,), through the textbook model."""
    idx = torch.tensor([ids])  # (1, T)
    logits, _ = model(idx, last_only=True, hooks=hooks)  # (1, 1, V)
    return logits[0, -1].float()  # (V,)


def next_probs(model, ids: list[int], hooks: Hooks | None = None) -> torch.Tensor:
    """The model's own next-token probabilities (softmax at temperature 1): (V,)."""
    return next_logits(model, ids, hooks).softmax(-1)  # (V,)


def top_tokens(probs: torch.Tensor, tokenizer, k: int = TOP) -> list[dict]:
    """The k most likely tokens, most likely first: [{"id", "token", "model_prob"}, ...]."""
    values, idx = probs.topk(min(k, probs.shape[-1]))  # (k,), (k,)
    pairs = zip(values.tolist(), idx.tolist(), strict=True)
    return [{**token(tokenizer, i), "model_prob": float(p)} for p, i in pairs]


# The last few prompts' plain runs: a learner switches one part off after another on the same
# prompt, and every experiment starts from the same plain run, so it is computed once.
_plain_runs = Memo(size=4)


def plain_run(model, ids: list[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One plain pass: the next-token logits (V,) and the stream entering each layer.

    streams[l] (1, T, D) is what layer l reads: streams[0] the token vectors, streams[n_layers]
    what the final norm reads. An experiment that changes layer l reruns from streams[l].
    Remembered for the last few prompts of each model; callers must not change the tensors.
    """
    return _plain_runs.get(model, tuple(ids), lambda: _plain_run(model, ids))


@torch.inference_mode()
def _plain_run(model, ids: list[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    streams: list[torch.Tensor] = []

    def keep(x):
        streams.append(x)
        return x

    n = model.cfg.n_layers
    hooks = Hooks(embed=keep, resid={layer: keep for layer in range(n)})
    logits, _ = model(torch.tensor([ids]), last_only=True, hooks=hooks)  # (1, 1, V)
    return logits[0, -1].float(), streams  # (V,), (L+1) x (1, T, D)


def forget_plain_runs() -> None:
    """Drop the remembered plain runs (a benchmark timing a first call)."""
    _plain_runs.forget(lambda key: True)
