"""API of "Why it makes things up": the calibration chart and the demonstrations beside it.

Thin on purpose: each route validates, calls one function of inference/calibration.py or
inference/makes_up.py, and serializes. Every number is measured when asked (greedy answers are
the same every time, so the calibration chart and the "I do not know" counts are kept per process).

Which questions a model is asked follows from the model: the shipped tiny models were taught facts
about Shakespeare's plays (the "plays" set, with taught, reworded and unseen questions); every other
model gets the project's general questions (data/factual_questions.json).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import AfterValidator, Field

from prediction_machine.inference import calibration, makes_up
from prediction_machine.jsonsafe import json_numbers
from prediction_machine.limits import MAX_TEMPERATURE
from prediction_machine.model import models
from prediction_machine.web.deps import language_model
from prediction_machine.web.validation import ModelName, Strict, no_surrogates, unprocessable

router = APIRouter(prefix="/api/makes-up", tags=["makes-up"])

TINY = calibration.PLAYS_MODELS  # asked about the plays

Question = Annotated[str, Field(min_length=1, max_length=makes_up.MAX_QUESTION),
                     AfterValidator(no_surrogates)]
Context = Annotated[str | None, Field(None, max_length=makes_up.MAX_CONTEXT,
                                      description="a sentence put before the question (the fact, given)"),
                    AfterValidator(lambda s: s if s is None else no_surrogates(s))]
NewTokens = Field(makes_up.ANSWER_TOKENS, ge=1, le=makes_up.MAX_NEW_TOKENS, strict=True,
                  description="new tokens at most, per answer")


class CalibrationRequest(Strict):
    model: ModelName = None


class AnswerRequest(Strict):
    question: Question
    context: Context = None
    model: ModelName = None
    max_new_tokens: int = NewTokens


class SamplesRequest(AnswerRequest):
    temperatures: list[Annotated[float, Field(ge=0, le=MAX_TEMPERATURE, strict=True)]] = Field(
        list(makes_up.TEMPERATURES), min_length=1, max_length=3, description="each sampled `samples` times")
    samples: int = Field(makes_up.SAMPLES, ge=1, le=makes_up.MAX_SAMPLES, strict=True)
    seed: int = Field(0, ge=0, le=2**31 - 1, strict=True)
    max_new_tokens: int = Field(makes_up.SAMPLE_TOKENS, ge=1, le=makes_up.MAX_NEW_TOKENS, strict=True)


class DontKnowRequest(Strict):
    model: Literal[TINY] = Field("shakespeare-chat", description="a shipped tiny model: base, SFT or DPO")


def fitted(lm, req: AnswerRequest) -> None:
    """A 422 when the chat-wrapped question (and its context) leaves no room for an answer."""
    n = len(lm.prompt_ids(makes_up.user_text(req.question, req.context)))
    if n >= lm.config.max_seq_len:
        raise unprocessable("question", f"is {n} tokens with its context and the chat markers; "
                                        f"{lm.shown_name} reads at most {lm.config.max_seq_len - 1} "
                                        "before its answer")


@router.get("/questions", summary="The question sets, their rules, and where 'I do not know' is taught")
def questions() -> dict:
    sets = {name: [asdict(q) for q in calibration.question_set(name)] for name in calibration.SETS}
    return {"sets": sets, "rules": calibration.RULES, "tiny_models": list(TINY),
            "dont_know_data": makes_up.data_counts(),
            "limits": {"question": makes_up.MAX_QUESTION, "context": makes_up.MAX_CONTEXT,
                       "samples": makes_up.MAX_SAMPLES, "max_new_tokens": makes_up.MAX_NEW_TOKENS}}


@router.post("/calibration",
             summary="Confidence against correctness: every question's first-token probability and verdict")
def calibration_chart(req: CalibrationRequest, request: Request) -> dict:
    lm = language_model(request, req.model)
    return json_numbers(calibration.cached_calibration(lm, calibration.set_for(lm.name)), 6)


@router.post("/answer", summary="The greedy answer token by token, with the model's own probabilities")
def answer(req: AnswerRequest, request: Request) -> dict:
    lm = language_model(request, req.model)
    fitted(lm, req)
    return json_numbers(makes_up.answer(lm, req.question, req.context, req.max_new_tokens), 6)


@router.post("/samples", summary="The same question sampled several times at each temperature")
def samples(req: SamplesRequest, request: Request) -> dict:
    lm = language_model(request, req.model)
    fitted(lm, req)
    return json_numbers(makes_up.samples(lm, req.question, req.context, tuple(req.temperatures), req.samples,
                                         req.max_new_tokens, req.seed), 6)


@router.post("/dont-know", summary="How often a tiny model says 'I do not know.' to the prompts taught it")
def dont_know(req: DontKnowRequest) -> dict:
    if req.model not in models.registry():
        raise unprocessable("model", f"{req.model} is not shipped with this installation")
    return json_numbers(makes_up.cached_dont_know(models.load(req.model)), 6)
