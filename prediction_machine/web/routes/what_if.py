"""The "what if" experiments that change or read a whole generation: branch, lens, steer.

Thin on purpose: validate, call prediction_machine.experiments, serialize (the same objects the
CLI prints with --json). Each answer generates on the textbook model, so each takes a heavy place
(web/admission.py) and stops when its client leaves. Limits: a prompt (and each steering text) of
at most max_experiment_tokens tokens, at most MAX_EXPERIMENT_NEW_TOKENS new tokens, at most
MAX_STEER_TEXTS texts a side, a strength within MAX_STEER_STRENGTH (limits.py).
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from pydantic import Field

from prediction_machine import limits
from prediction_machine.experiments import branching, generation_lens, steering
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.jsonsafe import json_numbers
from prediction_machine.web.deps import language_model, settings
from prediction_machine.web.routes.experiments import Index, PromptFields, experiment_ids
from prediction_machine.web.routes.inference import Prompt
from prediction_machine.web.validation import Strict, Temperature, unprocessable, within_limits

router = APIRouter(prefix="/api/experiments", tags=["experiments"])

Strength = Field(1.0, ge=-limits.MAX_STEER_STRENGTH, le=limits.MAX_STEER_STRENGTH, strict=True,
                 description="how much of the direction is added to the stream; 0 = the plain model, "
                             "negative = the other way")


class GenerationFields(PromptFields):
    new_tokens: int = Field(limits.EXPERIMENT_NEW_TOKENS, ge=1, le=limits.MAX_EXPERIMENT_NEW_TOKENS,
                            strict=True, description="tokens to generate")
    temperature: Temperature = limits.EXPERIMENT_TEMPERATURE
    seed: int | None = Field(None, ge=0, le=2**53, strict=True,
                             description="same seed + settings = same tokens (temperature above 0)")


class BranchRequest(GenerationFields):
    top_k: int = Field(0, ge=0, le=1000, strict=True, description="keep the k most likely tokens; 0 = off")
    top_p: float = Field(1.0, gt=0, le=1, strict=True,
                         description="nucleus: keep the smallest set reaching p")
    min_p: float = Field(0.0, ge=0, lt=1, strict=True, description="drop tokens below min_p x the top one")
    step: int = Field(ge=0, le=limits.MAX_EXPERIMENT_NEW_TOKENS - 1, strict=True,
                      description="the step whose token is forced, 0 = the first new token")
    token: int | None = Field(None, ge=0, le=10**6, strict=True, description="the forced token's id")
    rank: int | None = Field(None, ge=1, le=branching.TOP, strict=True,
                             description="or its place in that step's table, 1 = the most likely")


class SteerRequest(GenerationFields):
    positive: list[Prompt] = Field(min_length=1, max_length=limits.MAX_STEER_TEXTS,
                                   description="texts on the positive side of the direction")
    negative: list[Prompt] = Field(min_length=1, max_length=limits.MAX_STEER_TEXTS,
                                   description="texts on the negative side")
    layer: int = Index
    strength: float = Strength


class SafetySteerRequest(Strict):
    strength: float = Strength


# ----------------------------------------------------------------------------- helpers


def generation_ids(request: Request, req: GenerationFields):
    """The model and the prompt's ids, with room in its context for the new tokens (else a 422)."""
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    ids = experiment_ids(request, lm, "prompt", req.prompt, req.raw)
    context = lm.config.max_seq_len
    if len(ids) + req.new_tokens > context:
        raise unprocessable("new_tokens", f"is {req.new_tokens} after a prompt of {len(ids)} tokens; "
                                          f"together they must fit this model's context of {context}")
    return lm, ids


def value_error(field: str, e: ValueError):
    return unprocessable(field, str(e))


# ----------------------------------------------------------------------------- routes


@router.post("/branch", summary="Force another token at one step of a generation: the original and "
                                "the branch side by side, each step with its probability and top 5")
def branch(req: BranchRequest, request: Request) -> dict:
    lm, ids = generation_ids(request, req)
    if (req.token is None) == (req.rank is None):
        raise unprocessable("token", "give the forced token either by id (token) or by rank, not both")
    if req.token is not None and req.token >= lm.config.vocab_size:
        raise unprocessable("token", f"is {req.token}; this model's ids are 0..{lm.config.vocab_size - 1}")
    if req.step >= req.new_tokens:
        raise unprocessable("step", f"is {req.step}; with new_tokens {req.new_tokens} "
                                    f"it is 0..{req.new_tokens - 1}")
    params = SamplingParams(req.temperature, req.top_k, req.top_p, req.min_p)
    try:
        b = branching.branch(lm, ids, params, req.new_tokens, req.step, req.token, req.seed, req.rank)
    except ValueError as e:
        raise value_error("step", e) from None
    return json_numbers(b.to_json(lm.tokenizer))


@router.post("/lens", summary="Every generated token x every layer: its rank and probability through "
                              "the logit lens, and the layer that decided it")
def lens(req: GenerationFields, request: Request) -> dict:
    lm, ids = generation_ids(request, req)
    params = SamplingParams(req.temperature)
    out = generation_lens.generate_and_read(lm, ids, params, req.new_tokens, req.seed)
    return json_numbers(out.to_json(lm.tokenizer))


@router.post("/steer", summary="Add (mean of positive texts - mean of negative texts) at one layer's "
                               "stream while generating: the answer before and after")
def steer(req: SteerRequest, request: Request) -> dict:
    lm, ids = generation_ids(request, req)
    if req.layer >= lm.config.n_layers:
        raise unprocessable("layer", f"is {req.layer}; this model's layers are 0..{lm.config.n_layers - 1}")
    cap = settings(request).max_prompt_chars  # checked before tokenizing: within_limits sees the lists only
    for side in ("positive", "negative"):
        for n, text in enumerate(getattr(req, side)):
            if len(text) > cap:
                raise unprocessable(f"{side}[{n}]", f"is {len(text)} characters; the limit is {cap}")
    pos = [experiment_ids(request, lm, f"positive[{n}]", t, raw=True) for n, t in enumerate(req.positive)]
    neg = [experiment_ids(request, lm, f"negative[{n}]", t, raw=True) for n, t in enumerate(req.negative)]
    direction = steering.steering_direction(lm.model, pos, neg, req.layer)
    params = SamplingParams(req.temperature)
    out = steering.steer(lm, ids, direction, req.layer, req.strength, params, req.new_tokens, req.seed)
    return json_numbers(out.to_json(lm.tokenizer))


@functools.lru_cache(maxsize=16)
def safety_table(lm, strength: float) -> dict:
    """Measured once per model and strength: greedy answers of fixed weights to fixed questions."""
    return json_numbers(steering.safety_with_direction(lm, strength))


@router.post("/steer/safety", summary="The tiny chat model's rejected->chosen direction: refusal and "
                                      "over-refusal rates with it added, removed and off")
def steer_safety(req: SafetySteerRequest, request: Request) -> dict:
    return safety_table(language_model(request, steering.CHAT_MODEL), float(req.strength))
