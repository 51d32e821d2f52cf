"""API of "what fine-tuning changed inside" and "where did it learn that?", under the curriculum.

Thin on purpose: validate, find the checkpoints (shipped names, or the client's own run ids,
never paths), call weight_change, changed_inside and nearest_examples, serialize.
Ownership is the curriculum's (routes/curriculum.py): another student's run answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import AfterValidator, Field

from prediction_machine.model import models
from prediction_machine.training.curriculum import changed_inside, corpus_index, nearest_examples, runs
from prediction_machine.training.curriculum import weight_change as wc
from prediction_machine.web.routes.curriculum import _compared, _frozen, check_owner, clean, run_folder
from prediction_machine.web.validation import Strict, no_surrogates, unprocessable

router = APIRouter(prefix="/api/curriculum", tags=["curriculum"])
TINY = changed_inside.STAGES  # the shipped tiny models, in training order
RunName = Annotated[str, Field(pattern=runs.RUN_ID, max_length=80,
                               description="a shipped tiny model's name or one of your run ids")]
Question = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_surrogates)]


class DiffRequest(Strict):
    before: RunName = "shakespeare-chat"
    after: RunName = "shakespeare-dpo"


class InsideRequest(Strict):
    question: Question = "Who is Hamlet's mother?"
    stages: list[RunName] = Field(list(TINY), min_length=2, max_length=3,
                                  description="2 or 3 models, each trained from the one before it")
    layer: int = Field(0, ge=0, le=63, strict=True, description="the head shown: its layer")
    head: int = Field(0, ge=0, le=63, strict=True, description="the head shown: its number in the layer")
    answer_tokens: int = Field(changed_inside.ANSWER_TOKENS, ge=1, le=48, strict=True,
                               description="tokens of each stage's greedy answer")


class SourceRequest(Strict):
    text: Annotated[str, Field(min_length=1, max_length=corpus_index.MAX_TEXT), AfterValidator(no_surrogates)]
    model: RunName = "shakespeare-base"
    question: Question | None = Field(None, description="for a chat answer: the question it answered")


# ----------------------------------------------------------------------------- helpers


def folder(name: str, field: str, request: Request, lora: bool = False):
    """A shipped tiny model or the client's own run -> its folder (a LoRA run's too, when `lora`)."""
    if name in TINY:
        return models.checkpoint_folder(name)
    if name == models.DEFAULT_MODEL:
        return name
    path = runs.runs_dir() / name
    if lora and (path / wc.LORA_FILE).exists():
        check_owner(request, name, path, f"{field}: no checkpoint called {name!r}")
        return path
    return run_folder(name, field, request)


def loaded(name: str, field: str, request: Request) -> models.LanguageModel:
    return _frozen(str(models.checkpoint_folder(name))) if name in TINY else _compared(name, field, request)


# ----------------------------------------------------------------------------- routes


@router.post("/diff-models",
             summary="The relative weight change ||W_after - W_before|| / ||W_before|| per layer and matrix")
def diff_models(req: DiffRequest, request: Request) -> dict:
    before = folder(req.before, "before", request)
    after = folder(req.after, "after", request, lora=True)
    if after == models.DEFAULT_MODEL:
        raise unprocessable("after", f"{models.DEFAULT_MODEL} was not trained from another model here")
    if before == models.DEFAULT_MODEL and not (after / wc.LORA_FILE).exists():
        raise unprocessable("before", f"{models.DEFAULT_MODEL} is compared only with a LoRA run "
                                      "trained on it")
    try:
        change = wc.diff_models(before, after)
    except ValueError as e:
        raise unprocessable("after", str(e)) from None
    return clean({**change.to_dict(), "before": req.before, "after": req.after})


@router.post("/inside",
             summary="One question read by base, SFT and DPO side by side, and their weight change")
def inside(req: InsideRequest, request: Request) -> dict:
    lms = [loaded(name, f"stages[{i}]", request) for i, name in enumerate(req.stages)]
    try:
        return clean(changed_inside.compare_stages(lms, list(req.stages), req.question, req.layer, req.head,
                                                   req.answer_tokens))
    except ValueError as e:  # "layer: is 9; ...", "question: is 140 tokens ...", "stages: ..."
        field, _, message = str(e).partition(": ")
        raise unprocessable(field, message) from None


@router.post("/source", summary="Where did a tiny model learn a text: verbatim matches in its training text, "
                                "a memorisation score, the nearest fine-tuning data")
def source(req: SourceRequest, request: Request) -> dict:
    if req.model == models.DEFAULT_MODEL:
        raise unprocessable("model", corpus_index.NO_CORPUS.format(model=req.model))
    where = folder(req.model, "model", request)
    try:
        found = nearest_examples.where_learned(req.text, str(where) if req.model not in TINY else req.model,
                                               req.question)
    except ValueError as e:
        raise unprocessable("model", str(e)) from None
    found["model"] = req.model
    return clean(found)

