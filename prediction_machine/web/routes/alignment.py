"""API of the alignment section: preference pairs, the learner's ratings, DPO jobs, the safety table.

Thin on purpose, like routes/curriculum.py, whose job manager, run folders and limits it shares:
a DPO job is one more training job (same 429 when the server is full, same stream, pause and
stop routes under /api/curriculum/jobs/...). Each route validates, calls one library function
(preferences.py, rating.py, dpo.py, safety.py) and serializes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import AfterValidator, Field
from starlette.exceptions import HTTPException

from prediction_machine.limits import MAX_TEMPERATURE
from prediction_machine.model import models
from prediction_machine.training.curriculum import dpo, finetune, preferences, rating, safety
from prediction_machine.web.routes import curriculum as cur
from prediction_machine.web.validation import Strict, no_surrogates, unprocessable

router = APIRouter(prefix="/api/curriculum", tags=["alignment"])
RUN_ID = cur.RUN_ID
RECIPE = dpo.RECIPE
DPO_SHIPPED = "shakespeare-dpo"  # shipped beside shakespeare-chat; runs.py lists only base and chat

Text = Annotated[str, Field(min_length=1, max_length=preferences.MAX_TEXT), AfterValidator(no_surrogates)]
# An answer may arrive empty: preferences.learner_pairs then names which one (a 422 with its place).
Answer = Annotated[str, Field(max_length=preferences.MAX_TEXT), AfterValidator(no_surrogates)]


class SampleRequest(Strict):
    prompt: Text
    model: str = Field("shakespeare-chat", pattern=RUN_ID,
                       description="'shakespeare-chat' or a fine-tuning run id")
    seed: int = Field(0, ge=0, le=2**31 - 1, strict=True)
    temperature: float = Field(1.0, ge=0.1, le=MAX_TEMPERATURE, strict=True,
                               description="how adventurous the two answers are")


class PairIn(Strict):
    prompt: Text
    chosen: Answer
    rejected: Answer


class AlignRequest(Strict):
    sft: str = Field("shakespeare-chat", pattern=RUN_ID, description="the fine-tuned model to start from")
    pairs: list[PairIn] | None = Field(
        None, min_length=1, max_length=preferences.MAX_PAIRS,
        description=f"your own choices (1..{preferences.MAX_PAIRS}); omit for the project's pairs")
    steps: int | None = Field(None, ge=1, le=500, strict=True,
                              description="default: 12 for your pairs, the recipe's otherwise")
    lr: float | None = Field(None, gt=0, le=0.01, strict=True)
    beta: float = Field(RECIPE.beta, gt=0, le=10, strict=True,
                        description="how tightly the model is held to where it started")
    batch_size: int = Field(RECIPE.batch_size, ge=1, le=64, strict=True)


class StagesRequest(Strict):
    question: Text
    mine: str | None = Field(None, pattern=RUN_ID,
                             description="a preference-tuning run of your own, asked as a fourth model")


class SafetyRequest(Strict):
    models: list[Annotated[str, Field(pattern=RUN_ID)]] = Field(list(safety.MODELS), min_length=1,
                                                                 max_length=4)


def checkpoint(name: str, field: str, request: Request) -> Path:
    if name == DPO_SHIPPED and (models.shipped_checkpoint(name) / "prediction-machine.json").is_file():
        return models.shipped_checkpoint(name)
    return cur.run_folder(name, field, request)


@router.get("/preferences/data",
            summary="The project's preference pairs: counts per kind and split, one of each kind")
def preference_data() -> dict:
    return {**preferences.summary(), "prompts": list(rating.PROMPTS), "max_pairs": preferences.MAX_PAIRS,
            "max_text": preferences.MAX_TEXT, "shipped": cur.clean(dpo.shipped_summary())}


@router.post("/align/sample", summary="Two sampled answers to one prompt, for you to rate")
def sample(req: SampleRequest, request: Request) -> dict:
    if req.model == DPO_SHIPPED:
        lm = cur._frozen(str(checkpoint(req.model, "model", request)))  # shipped: loaded once
    else:  # a run, or shakespeare-chat: the checkpoint-keyed cache /compare uses
        lm = cur._compared(req.model, "model", request)
    return rating.sample_pair(lm.model, lm.tokenizer, req.prompt, req.seed, req.temperature)


@router.post("/align",
             summary="Start a DPO job on your rated pairs (or the project's); returns its id at once")
def start_align(req: AlignRequest, request: Request) -> dict:
    cur.step_cap(request, req.steps)
    sft = checkpoint(req.sft, "sft", request)
    if req.pairs is not None:
        rows = [p.model_dump() for p in req.pairs]
        try:
            dpo.fitting_pairs(sft, rows)  # an empty answer, too many pairs or tokens: a 422, not a failed job
        except preferences.PairError as e:
            field, _, problem = str(e).partition(": ")
            raise unprocessable(field, problem) from None
        cfg = replace(rating.LEARNER, beta=req.beta, batch_size=req.batch_size,
                      **{k: v for k, v in (("steps", req.steps), ("lr", req.lr)) if v is not None})
        folder = cur.new_folder(request, "dpo")
        return cur.start_job(request, "dpo", lambda stop, pause: rating.learner_dpo(
            sft, folder, rows, cfg, stop, pause, sft_name=req.sft), folder)
    cfg = replace(RECIPE, beta=req.beta, batch_size=req.batch_size,
                  **{k: v for k, v in (("steps", req.steps), ("lr", req.lr)) if v is not None})
    folder = cur.new_folder(request, "dpo")
    return cur.start_job(request, "dpo", lambda stop, pause: dpo.dpo(
        cfg, sft, folder, should_stop=stop, should_pause=pause, sft_name=req.sft), folder)


@router.post("/align/compare", summary="One prompt to the base, fine-tuned and preference-tuned models")
def compare_stages(req: StagesRequest, request: Request) -> dict:
    names = [("Base (pre-trained only)", "shakespeare-base"), ("Fine-tuned (SFT)", "shakespeare-chat"),
             ("Preference-tuned (DPO)", DPO_SHIPPED)]
    lms = [(label, cur._frozen(str(checkpoint(name, "model", request)))) for label, name in names]
    if req.mine is not None:  # the learner's own DPO run, from the checkpoint-keyed cache /compare uses
        own = cur._compared(req.mine, "mine", request)
        if own.tokenizer.json != lms[0][1].tokenizer.json:
            raise HTTPException(409, "mine: was not tuned from the shipped models (its vocabulary differs)")
        lms.append((f"My preference-tuned run ({req.mine})", own))
    stages = [(label, lm.model) for label, lm in lms]
    context = min(model.cfg.max_seq_len for _, model in stages)
    if (problem := finetune.question_fits(lms[0][1].tokenizer, req.question, context)) is not None:
        raise unprocessable("question", problem)
    return cur.clean(rating.three_stages(stages, lms[0][1].tokenizer, req.question))  # three or four


@router.post("/align/safety",
             summary="The safety table, measured now: refusals, over-refusals, helpfulness, every answer")
def safety_table(req: SafetyRequest, request: Request) -> dict:
    folders = {}
    for n, name in enumerate(req.models):
        folders[name] = checkpoint(name, f"models[{n}]", request)
    if len(folders) < len(req.models):
        raise HTTPException(422, "models: each model may be named only once")
    return cur.clean(safety.table(folders))
