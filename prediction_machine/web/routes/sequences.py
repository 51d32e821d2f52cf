"""API of "one machine, any sequence": draw a digit, compose a tune, train either live.

Thin on purpose: validate, call one function of prediction_machine.sequences, serialize.
Drawing and composing run the tiny models (0.2M parameters) in well under a second, so they
answer as plain JSON; training runs as a job in the curriculum's bounded job manager, and the
page follows it as server-sent events. A live run saves its model in a run folder of its own
(owned by its starter, pruned with their other runs), so after a reload it still draws or
composes (`run`), and /compare measures it beside the shipped model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, Field

from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.sequences import digits, melody, own, shipped, train
from prediction_machine.sequences import pixel_tokens as pt
from prediction_machine.training.curriculum import recipes
from prediction_machine.training.curriculum.checkpoint import read_record
from prediction_machine.training.curriculum.loop import fit_warmup
from prediction_machine.web.routes.curriculum import (
    RUN_ID,
    check_owner,
    clean,
    manager,
    new_folder,
    start_job,
    step_cap,
)
from prediction_machine.web.security import owner_of
from prediction_machine.web.streaming import SSE_RESPONSES, sse
from prediction_machine.web.validation import Strict, Temperature, no_surrogates, unprocessable

router = APIRouter(prefix="/api/sequences", tags=["sequences"])

MAX_TRAIN_STEPS = 2000  # a live run on the page: minutes at most on a small CPU
Level = Annotated[int, Field(ge=0, le=pt.LEVELS - 1, strict=True)]
Seed = Annotated[int | None, Field(ge=0, le=2**31 - 1, strict=True,
                                   description="the same seed gives the same result")]
Run = Annotated[str | None, Field(pattern=RUN_ID,
                                  description="your live run (GET /api/sequences/runs); null = the shipped")]


class DrawRequest(Strict):
    digit: int | None = Field(None, ge=0, le=9, strict=True,
                              description="the digit asked for; null = any digit")
    prefix: list[Level] = Field(
        [], max_length=pt.PIXELS - 1,
        description="grey levels (0..16) of the first pixels, painted by you, row by row")
    temperature: Temperature = 1.0
    seed: Seed = None
    run: Run = None


class ComposeRequest(Strict):
    start: Annotated[str, Field(max_length=600,
                                description="first notes, e.g. 'C5 B4:0.5 A4:2' (name:beats)"),
                     AfterValidator(no_surrogates)] = ""
    notes: int = Field(32, ge=1, le=melody.MAX_NOTES - 1, strict=True,
                       description="at most this many new notes")
    temperature: Temperature = 1.0
    seed: Seed = None
    run: Run = None


class CompareRequest(Strict):
    kind: Literal["digits", "melody"] = "digits"
    run: str = Field(..., pattern=RUN_ID, description="a live run of yours of this kind")
    seed: int = Field(0, ge=0, le=2**31 - 1, strict=True, description="the same seed for both models")


class TrainRequest(Strict):
    kind: Literal["digits", "melody"] = "digits"
    steps: int = Field(300, ge=1, le=MAX_TRAIN_STEPS, strict=True,
                       description="optimizer steps of the live run")


class FollowRequest(Strict):
    after: int = Field(0, ge=0, le=10**7, strict=True, description="skip the first N events (already seen)")


@router.post("/digits/draw",
             summary="Fill an 8x8 digit pixel by pixel; every pixel's 17-way distribution and draw")
def draw_digit(req: DrawRequest, request: Request) -> dict:
    model = learner_model("digits", req.run, request)
    return clean(digits.draw(req.digit, req.prefix, SamplingParams(temperature=req.temperature), req.seed,
                             model))


@router.post("/melody/compose", summary="Continue a tune note by note; every step's distribution and draw")
def compose(req: ComposeRequest, request: Request) -> dict:
    model = learner_model("melody", req.run, request)
    try:
        start = melody.parse_notes(req.start)
        return clean(melody.compose(start, SamplingParams(temperature=req.temperature), req.seed, req.notes,
                                    model))
    except ValueError as e:  # an unknown note name, a pitch out of range, too many notes
        raise unprocessable("start", str(e)) from None


@router.get("/models", summary="The shipped pixel and note models: size, training cost, measured numbers")
def shipped_models() -> dict:
    return clean({kind: read_record(shipped.shipped(kind)) for kind in shipped.KINDS})


@router.get("/runs", summary="Your saved live runs of the pixel and note models, newest first")
def list_runs(request: Request) -> dict:
    return {"runs": clean(own.list_runs(viewer=owner_of(request)))}


@router.post("/compare",
             summary="Your run beside the shipped model: held-out loss and a few samples of each, same seeds")
def compare(req: CompareRequest, request: Request) -> dict:
    mine = learner_model(req.kind, req.run, request)
    return clean({"run": req.run, **own.compare(req.kind, mine, req.seed)})


@router.post("/train",
             summary="Start a short live training run of the pixel or note model; returns its job id")
def start_training(req: TrainRequest, request: Request) -> dict:
    step_cap(request, req.steps)
    # The page's short run: the shipped recipe with fewer steps (and a warm-up a tenth as long).
    cfg = fit_warmup(replace(recipes.get(req.kind).config, steps=req.steps,
                             eval_every=max(10, req.steps // 10), sample_every=max(10, req.steps // 5)))
    folder = new_folder(request, req.kind)  # saved at the end (and on stop), so it draws after a reload
    return start_job(request, f"sequences-{req.kind}",
                     lambda stop, pause: train.train(cfg, folder, stop, pause, extra=False), folder)


def learner_model(kind: str, run: str | None, request: Request):
    """None (the shipped model) for no run; a run of this kind that the viewer owns, else a 404."""
    if run is None:
        return None
    missing = f"run: no saved {kind} run called {run!r}; GET /api/sequences/runs lists yours"
    path = own.find(run, kind)
    if path is None:
        raise HTTPException(404, missing)
    check_owner(request, run, path, missing)
    return own.load(path)


@router.post("/jobs/{job_id}/events",
             summary="Follow a training job as server-sent events, from event `after` on",
             responses=SSE_RESPONSES)
async def follow(job_id: Annotated[str, Field(pattern=RUN_ID)], req: FollowRequest, request: Request):
    m = manager(request)
    job = m.get(job_id, owner=owner_of(request))  # in classroom mode, only its starter (or the teacher)

    async def events():
        async for name, data in m.follow(job, req.after):
            if await request.is_disconnected():
                return
            yield sse(name, clean(data))

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/jobs/{job_id}/stop", summary="Stop a training job (within one optimizer step)")
def stop(job_id: Annotated[str, Field(pattern=RUN_ID)], request: Request) -> dict:
    return {"job": manager(request).control(job_id, "stop", owner=owner_of(request)).describe()}
