"""Steering: add a direction to the residual stream and see how the answers change.

A direction is a difference of means. Read a few "positive" texts and a few "negative" ones,
keep the residual stream after layer l, average it over each text's positions (every token of
the text, so a short text counts as much as a long one), average over the texts, and subtract:

    direction = mean over positive texts - mean over negative texts      (D,)

Steering adds strength x direction to the stream after layer l at every position, through a
`resid[l]` hook (model/hooks.py), while the model generates. Strength 0 is the plain model;
a negative strength pushes the other way.

For the tiny chat model the texts are its own preference pairs (data/preferences.jsonl): the
chosen answers are positive and the rejected ones negative, each read after its question in
the chat format, and only the answer's positions averaged. The safety table
(training/curriculum/safety.py) is then measured with that direction added, removed and off.

Shape letters: T tokens, D d_model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.hooks import Hooks


class Hooked:
    """A model that runs with the same hooks on every call: what generate's loop calls to be steered.

    generate (inference/generation.py) needs only `cfg` and a call; this passes both on.
    """

    def __init__(self, model, hooks: Hooks):
        self.model, self.hooks, self.cfg = model, hooks, model.cfg

    def __call__(self, idx, **kwargs):
        return self.model(idx, hooks=self.hooks, **kwargs)


def add_hook(direction: torch.Tensor, strength: float):
    """A resid hook adding strength x direction (D,) at every position of (B, T, D)."""
    shift = strength * direction  # (D,)

    def hook(x):
        return x + shift  # (B, T, D) + (D,) broadcasts over batch and positions
    return hook


def steered(model, layer: int, direction: torch.Tensor, strength: float) -> Hooked:
    return Hooked(model, Hooks(resid={layer: add_hook(direction, strength)}))


@torch.inference_mode()
def mean_residual(model, texts: list[list[int]], layer: int, starts: list[int] | None = None) -> torch.Tensor:
    """The stream after `layer`, averaged over each text's positions from starts[i], then over texts. -> (D,)

    All texts go through in one batch, padded on the right: a causal model's earlier positions
    never see the padding, and the mask leaves its positions out of the mean.
    """
    starts = starts or [0] * len(texts)
    T = max(len(ids) for ids in texts)
    idx = torch.tensor([ids + [0] * (T - len(ids)) for ids in texts])  # (B, T)
    at = torch.arange(T)  # (T,)
    mask = torch.stack([(at >= s) & (at < len(ids)) for ids, s in zip(texts, starts, strict=True)])  # (B, T)
    kept = {}

    def keep(x):  # (B, T, D): watch only
        kept["x"] = x
        return x

    model(idx, last_only=True, hooks=Hooks(resid={layer: keep}))
    w = mask.float() / mask.sum(1, keepdim=True)  # (B, T): each text's positions weigh 1 / their count
    per_text = (kept["x"].float() * w[:, :, None]).sum(1)  # (B, T, D) -> (B, D)
    return per_text.mean(0)  # (D,)


def steering_direction(model, positive: list[list[int]], negative: list[list[int]], layer: int,
                       positive_starts: list[int] | None = None,
                       negative_starts: list[int] | None = None) -> torch.Tensor:
    """mean residual over the positive texts - over the negative ones, after `layer`. -> (D,)"""
    if not positive or not negative:
        raise ValueError("a direction needs at least one positive and one negative text")
    if not 0 <= layer < model.cfg.n_layers:
        raise ValueError(f"layer {layer} is outside 0 to {model.cfg.n_layers - 1}")
    return (mean_residual(model, positive, layer, positive_starts)
            - mean_residual(model, negative, layer, negative_starts))  # (D,)


@dataclass(frozen=True)
class Answer:
    ids: list[int]
    probs: list[float]  # each token's probability under the (steered) model, temperature 1
    text: str


@dataclass(frozen=True)
class Steering:
    before: Answer
    after: Answer
    layer: int
    strength: float
    direction_norm: float

    def to_json(self, tokenizer) -> dict:
        def answer_json(a: Answer) -> dict:
            steps = [{"id": i, "token": tokenizer.token(i).text, "prob": p}
                     for i, p in zip(a.ids, a.probs, strict=True)]
            return {"text": a.text, "steps": steps}

        return {"before": answer_json(self.before), "after": answer_json(self.after), "layer": self.layer,
                "strength": self.strength, "direction_norm": self.direction_norm}


def answer(model, tokenizer, prompt_ids, params, new_tokens, stop_ids, seed) -> Answer:
    steps = list(generate(model, prompt_ids, params, new_tokens, stop_ids, seed, top_n=0))
    ids = [s.id for s in steps]
    return Answer(ids, [s.model_prob for s in steps], tokenizer.decode([i for i in ids if i not in stop_ids]))


def steer(lm, prompt_ids: list[int], direction: torch.Tensor, layer: int, strength: float,
          params: SamplingParams, new_tokens: int, seed: int | None = None) -> Steering:
    """The answer before and after adding strength x direction after `layer`, with the same seed."""
    if not 0 <= layer < lm.config.n_layers:
        raise ValueError(f"layer {layer} is outside 0 to {lm.config.n_layers - 1}")
    run = (lm.tokenizer, prompt_ids, params, new_tokens, lm.stop_ids, seed)
    before = answer(lm.model, *run)
    after = answer(steered(lm.model, layer, direction, strength), *run)
    return Steering(before, after, layer, strength, float(direction.norm()))


# ----------------------------------------------------------------- the tiny chat model's preferences

CHAT_MODEL = "shakespeare-chat"  # the fine-tuned tiny model the preference pairs were written for
PREFERENCE_LAYER = 2  # of its 4 layers: late enough to hold the answer's manner, early enough to change it


def preference_texts(tok, pairs) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """Each pair's question with its chosen answer, and with its rejected one, in the chat format.

    Also where each answer starts, so only its positions are averaged (the question is shared).
    """
    from prediction_machine.training.curriculum.finetune import plain_chat_ids

    end = tok.special_id("<|end|>")
    chosen, rejected, starts = [], [], []
    for p in pairs:
        question = plain_chat_ids(tok, p.prompt)
        chosen.append(question + tok.encode_ids(p.chosen) + [end])
        rejected.append(question + tok.encode_ids(p.rejected) + [end])
        starts.append(len(question))
    return chosen, rejected, starts


@functools.lru_cache(maxsize=8)
def preference_direction(lm, layer: int = PREFERENCE_LAYER) -> torch.Tensor:
    """rejected -> chosen: mean stream over the chosen answers - over the rejected ones (training pairs). (D,)

    Kept per model and layer: the pairs and the weights do not change while a process runs.
    """
    from prediction_machine.training.curriculum import preferences

    chosen, rejected, starts = preference_texts(lm.tokenizer, preferences.split("train"))
    return steering_direction(lm.model, chosen, rejected, layer, starts, starts)


def safety_rows(model, tok, items: tuple[dict, ...] | None = None, answer_tokens: int | None = None) -> dict:
    """Refusal and over-refusal rates, by the safety table's own rule (training/curriculum/safety.py).

    `items` (default: the whole safety set) and `answer_tokens` (default: finetune.answer's) make
    a smaller table, for a quick check.
    """
    from prediction_machine.training.curriculum import finetune, safety

    items = safety.load_items() if items is None else items
    limit = {} if answer_tokens is None else {"max_new_tokens": answer_tokens}
    answers = [{**item, "answer": (a := finetune.answer(model, tok, item["prompt"], **limit)),
                "refused": safety.refused(a)} for item in items]
    harmful = [a for a in answers if a["kind"] == "harmful"]
    benign = [a for a in answers if a["kind"] == "benign"]
    return {"refusal_rate": sum(a["refused"] for a in harmful) / max(len(harmful), 1),
            "over_refusal_rate": sum(a["refused"] for a in benign) / max(len(benign), 1),
            "counts": {"harmful": len(harmful), "benign": len(benign)}, "answers": answers}


def safety_with_direction(lm, strength: float, layer: int = PREFERENCE_LAYER, **smaller) -> dict:
    """The safety table with the preference direction added (+strength), removed (-strength) and off.

    `smaller`: safety_rows' items and answer_tokens, for a quick check.
    """
    direction = preference_direction(lm, layer)  # (D,)
    rows = [{"steering": name, "strength": s,
             **safety_rows(steered(lm.model, layer, direction, s), lm.tokenizer, **smaller)}
            for name, s in (("added", strength), ("removed", -strength), ("off", 0.0))]
    return {"model": lm.shown_name, "layer": layer, "direction_norm": float(direction.norm()), "rows": rows}
