"""The class aligns one model together: a class rating round and its one DPO run (classroom mode only).

The teacher opens a rating round; the server draws the pairs once (classroom/class_rating.py,
draw_pairs), so every student rates THE SAME pairs and the class's agreement can be measured.
Students vote on their own pages (one vote per student per pair, keyed by the signed client id);
the teacher sees the counts pair by pair and starts ONE DPO run on the pooled pairs: a training
job like every other (the job manager's places and queue), bounded by class_rating_steps. Every
student's page then reads the run's before and after, and its safety table, here.

Who may call what is as in routes/classroom.py: everything 404 without a token, teacher routes
403 to a student, a forged client id 401 before it gets here. Model text is returned as text.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import AfterValidator, Field
from starlette.exceptions import HTTPException

from prediction_machine.classroom import class_rating as cr
from prediction_machine.limits import MAX_TEMPERATURE
from prediction_machine.training.curriculum import preferences, rating
from prediction_machine.web.deps import settings
from prediction_machine.web.routes import alignment
from prediction_machine.web.routes import curriculum as cur
from prediction_machine.web.routes.classroom import (
    Number,
    class_state,
    rating_json,
    rating_run,
    student,
    teacher_only,
)
from prediction_machine.web.validation import Strict, no_surrogates, unprocessable, up_to, within_limits

router = APIRouter(prefix="/api/class", tags=["classroom"])
SFT = "shakespeare-chat"  # the model the class rates and aligns: the alignment section's chat model
Prompt = Annotated[str, Field(min_length=1, max_length=preferences.MAX_TEXT), AfterValidator(no_surrogates)]


class RatingRequest(Strict):
    prompts: list[Prompt] | None = Field(
        None, min_length=1, json_schema_extra=up_to("class_rating_pairs"),
        description="the prompts the class rates answers to; omit for the alignment section's own")
    temperature: float = Field(1.0, ge=0.1, le=MAX_TEMPERATURE, strict=True,
                               description="how adventurous the two answers are")
    seed: int | None = Field(None, ge=0, le=2**30, strict=True,
                             description="the same prompts, seed and temperature draw the same pairs again; "
                                         "omit for a new draw")


class VoteRequest(Strict):
    pair: int = Field(..., ge=0, le=10**6, strict=True, description="the pair's place in the round, from 0")
    choice: int = Field(..., ge=0, le=1, strict=True, description="0: answer A is better, 1: answer B")


# ----------------------------------------------------------------------------- helpers


def find(request: Request, number: int) -> cr.RatingRound:
    r = class_state(request).ratings.get(number)
    if r is None:
        raise HTTPException(404, f"number: there is no rating round {number} (only the latest is kept)")
    return r


# ----------------------------------------------------------------------------- routes


@router.post("/ratings", summary="Teacher: open a class rating round; the server draws every pair once")
def open_rating(req: RatingRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    c = teacher_only(request)
    # Not a heavy route (admission.HEAVY_ROUTES): only the teacher opens a round, a few times a lesson, and
    # it must not wait in line behind the class's own heavy answers, nor share their address's rate.
    prompts = list(req.prompts) if req.prompts is not None else list(rating.PROMPTS)
    prompts = [p.strip() for p in prompts[: settings(request).class_rating_pairs]]
    if not all(prompts):
        raise unprocessable("prompts", "a prompt is empty; write a question the class's model answers")
    lm = cur._frozen(str(alignment.checkpoint(SFT, "sft", request)))  # shipped: loaded once
    seed = secrets.randbelow(2**30) if req.seed is None else req.seed  # prompt n's pair: seed + n
    pairs = cr.draw_pairs(lm.model, lm.tokenizer, prompts, seed, req.temperature,
                          lm.model.cfg.max_seq_len)
    if not pairs:
        raise unprocessable("prompts", "the model gave the same (or an empty) answer twice to every prompt: "
                                       "try other prompts or a higher temperature")
    votes = settings(request).class_rating_votes_kept
    r = c.ratings.start(lambda n: cr.RatingRound(n, pairs, req.temperature, cap=votes))
    return rating_json(request, r, None)


@router.post("/ratings/{number}/vote", summary="A student's choice on one pair: 0 for answer A, 1 for B",
             responses={409: {"description": "the round's voting is over"}})
def vote(number: Number, req: VoteRequest, request: Request) -> dict:
    class_state(request)  # 404 on a server without a class, before anything else
    me = student(request)
    if request.scope.get("pm_teacher", False):
        raise HTTPException(403, "the teacher does not vote: the class's choices are the students'")
    r = find(request, number)
    try:
        r.vote(me, req.pair, req.choice)
    except cr.RatingError as e:
        status = {"closed": 409, "full": 429}.get(e.kind, 422)
        if status == 422:
            raise unprocessable("pair", str(e).removeprefix("pair: ")) from None
        raise HTTPException(status, str(e)) from e
    return {"number": r.number, "mine": {str(p): c for p, c in r.of(me).items()}}


@router.get("/ratings/{number}", summary="Teacher: the round's pairs and, pair by pair, how the class voted")
def rating_counts(number: Number, request: Request) -> dict:
    teacher_only(request)
    return rating_json(request, find(request, number), None)


@router.post("/ratings/{number}/train",
             summary="Teacher: close the votes and start the class's ONE DPO run on its pooled pairs")
def train(number: Number, request: Request) -> dict:
    teacher_only(request)
    s = settings(request)
    cur.step_cap(request, s.class_rating_steps)
    r = find(request, number)
    sft = alignment.checkpoint(SFT, "sft", request)
    cfg = replace(rating.LEARNER, steps=s.class_rating_steps, eval_every=s.class_rating_steps)

    def start(rows: list[dict]) -> tuple[str, str]:
        folder = cur.new_folder(request, "dpo")
        job = cur.start_job(request, "dpo", lambda stop, pause: cr.class_run(
            sft, folder, rows, cfg, stop, pause, sft_name=SFT), folder)["job"]
        return job["id"], folder.name

    try:
        pooled = r.start_run(start)
    except cr.RatingError as e:
        if e.kind == "trained":
            raise HTTPException(409, str(e)) from e
        raise unprocessable("pairs", str(e).removeprefix("pairs: ")) from None
    return {"number": r.number, "pooled": pooled, "run": rating_run(request, r)}


@router.get("/ratings/{number}/run",
            summary="The class run's before and after answers and its safety table (everyone in the class)")
def run_result(number: Number, request: Request) -> dict:
    class_state(request)
    student(request)
    r = find(request, number)
    if r.job is None:
        raise HTTPException(404, f"number: rating round {number} has no run yet; the teacher starts it")
    state = rating_run(request, r)
    out = {"number": r.number, "run": state, "pooled": r.trained, "before": None, "after": None,
           "safety": None, "done": None}
    try:
        events = list(cur.manager(request).get(r.job).events)
    except HTTPException:
        return out  # forgotten by the job manager: its checkpoint stays on disk
    for name, data in events:
        if name in ("before", "after"):
            out[name] = data["probes"]
        elif name == "safety":
            out["safety"] = {"rule": data["rule"], "rows": [{k: v for k, v in row.items() if k != "answers"}
                                                             for row in data["rows"]]}
        elif name in ("done", "error"):
            out["done"] = {k: data.get(k) for k in ("status", "reason", "seconds", "error")}
    return cur.clean(out)
