"""API of the curriculum section: start training jobs, follow them live, compare base and tuned.

Thin on purpose: validate, hand the Python training iterators (pretrain.py, finetune.py,
lora.py) to the bounded job manager (web/jobs.py), find and list run folders with runs.py,
and serialize. Training never runs on
the request's thread: a start request returns the job's id at once.

Ownership (classroom mode): jobs and runs belong to the client that started them. A student
sees, follows, stops and resumes only their own (and the shipped models); others' jobs and runs
answer 404, as ones that do not exist do.
The teacher and the laptop user may touch all of them. Before a new run, the client's oldest
runs are removed past its quota (runs.prune).
"""

from __future__ import annotations

import re
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, Field
from starlette.exceptions import HTTPException

from prediction_machine.jsonsafe import json_numbers
from prediction_machine.memo import Memo
from prediction_machine.model import models, weights
from prediction_machine.training.curriculum import corpus as corpus_mod
from prediction_machine.training.curriculum import finetune as ft
from prediction_machine.training.curriculum import loop, lora, pretrain, runs, scale
from prediction_machine.web import identity
from prediction_machine.web.deps import settings
from prediction_machine.web.jobs import JobManager
from prediction_machine.web.security import owner_of
from prediction_machine.web.streaming import SSE_RESPONSES, sse
from prediction_machine.web.validation import Strict, no_surrogates, unprocessable

router = APIRouter(prefix="/api/curriculum", tags=["curriculum"])
RUN_ID = runs.RUN_ID
_manager_lock = threading.Lock()
COMPARED = Memo(size=4)  # checkpoints of runs loaded for /compare: the 4 most recent stay, the rest are freed
# The defaults the page starts with are the library's: the live preset, FinetuneConfig, LoraConfig.
LIVE = pretrain.PRESETS["live"]
FT = ft.FinetuneConfig()
LORA = lora.LoraConfig()

UserText = Annotated[
    str,
    Field(max_length=corpus_mod.MAX_USER_CHARS, description="your own training text (plain UTF-8)"),
    AfterValidator(no_surrogates),
]


class PretrainRequest(Strict):
    text: UserText | None = Field(
        None, description="train on this text instead of Shakespeare (omit for the plays)")
    corpus_chars: int = Field(
        LIVE.corpus_chars, ge=10_000, le=6_000_000, strict=True,
        description="use this many characters of Shakespeare (fewer = faster to tokenize)")
    tokenizer: Literal["bpe", "char"] = LIVE.tokenizer
    vocab_size: int = Field(LIVE.vocab_size, ge=259, le=4096, strict=True,
                            description="BPE vocabulary (bytes + merges + 3 control tokens)")
    steps: int = Field(LIVE.steps, ge=1, le=20_000, strict=True)
    batch_size: int = Field(LIVE.batch_size, ge=1, le=64, strict=True)
    context: int = Field(LIVE.context, ge=16, le=128, strict=True,
                         description="tokens per window (the tiny model holds 128)")
    lr: float = Field(LIVE.lr, gt=0, le=0.1, strict=True)
    eval_every: int = Field(LIVE.eval_every, ge=1, le=1000, strict=True)
    sample_every: int = Field(LIVE.sample_every, ge=1, le=1000, strict=True)
    seed: int = Field(LIVE.seed, ge=0, le=2**31 - 1, strict=True)
    resume: str | None = Field(None, max_length=80, description="a run id from GET /runs to continue")


class FinetuneRequest(Strict):
    base: str = Field("shakespeare-base", pattern=RUN_ID,
                      description="'shakespeare-base' or a pre-training run id")
    steps: int = Field(FT.steps, ge=1, le=5000, strict=True)
    batch_size: int = Field(FT.batch_size, ge=1, le=64, strict=True)
    lr: float = Field(FT.lr, gt=0, le=0.1, strict=True)
    eval_every: int = Field(FT.eval_every, ge=1, le=1000, strict=True,
                            description="also how often a sample is written")
    seed: int = Field(FT.seed, ge=0, le=2**31 - 1, strict=True)


class LoraRequest(Strict):
    steps: int = Field(LORA.steps, ge=1, le=500, strict=True)
    rank: int = Field(LORA.rank, ge=1, le=64, strict=True,
                      description="the adapters' rank r (alpha is kept at 2 r)")
    layers: int = Field(LORA.layers, ge=1, le=30, strict=True, description="adapt the top N layers")
    lr: float = Field(LORA.lr, gt=0, le=0.1, strict=True)


class FollowRequest(Strict):
    after: int = Field(0, ge=0, le=10**7, strict=True, description="skip the first N events (already seen)")


class CompareRequest(Strict):
    question: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_surrogates)]
    tuned: str = Field(..., pattern=RUN_ID, description="'shakespeare-chat' or a fine-tuning run id")
    base: str | None = Field(None, pattern=RUN_ID,
                             description="the model to compare with; default: the base the tuned run's "
                                         "run.json records (shakespeare-base when it records none)")
    k: int = Field(8, ge=1, le=30, strict=True)


# ----------------------------------------------------------------------------- helpers


def manager(request: Request) -> JobManager:
    state = request.app.state
    with _manager_lock:
        if getattr(state, "training_jobs", None) is None:
            s = settings(request)
            # The queue and the shares are for a class: on a laptop the one user would only wait for
            # their own jobs, so a full server answers 429 at once.
            classroom = bool(s.token)
            state.training_jobs = JobManager(
                s.max_training_jobs, pause_timeout_s=s.pause_timeout_s,
                max_queued=s.max_training_queued if classroom else 0,
                per_client=s.training_jobs_per_client if classroom else None,
                per_ip=s.training_jobs_per_ip if classroom else None,
                address_of=identity.addresses(request.app).of)
    return state.training_jobs


def step_cap(request: Request, steps: int | None, field: str = "steps") -> None:
    """Classroom mode: a 422 for a job asking more optimizer steps than classroom_max_steps, so no
    job holds a training place for hours."""
    s = settings(request)
    if s.token and steps is not None and steps > s.classroom_max_steps:
        raise unprocessable(field, f"{steps} steps is more than this classroom allows: at most "
                                   f"{s.classroom_max_steps} per job (the server's classroom_max_steps)")


def creator(request: Request) -> str:
    """Who a new job or run belongs to: the client id in classroom mode, "local" on a laptop."""
    return request.scope.get("pm_client") or "local"


def check_owner(request: Request, name: str, path: Path, missing: str) -> None:
    """Someone else's run answers exactly as a missing one does (404, `missing`): a student cannot
    learn from the answer which run ids exist."""
    viewer = owner_of(request)
    if viewer is not None and name not in runs.SHIPPED and runs.owner(path) != viewer:
        raise HTTPException(404, missing)


def run_folder(name: str, field: str, request: Request | None = None) -> Path:
    """A shipped model name or a run id -> its checkpoint folder (never an arbitrary path), else a 404
    (someone else's run gets the same 404)."""
    path = runs.find_checkpoint(name)
    missing = f"{field}: no checkpoint called {name!r}; GET /api/curriculum/runs lists them"
    if path is None:
        raise HTTPException(404, missing)
    if request is not None:
        check_owner(request, name, path, missing)
    return path


def new_folder(request: Request, kind: str) -> Path:
    """A run folder owned by this client, after removing its runs past the quota and the age limit,
    then (classroom mode) the oldest runs of every client of its address past the address's ceiling."""
    s, who = settings(request), creator(request)
    busy = {j.folder for j in manager(request).running()}
    runs.prune(who, s.run_quota_mb * 1e6, s.run_max_age_days * 86400, keep=busy)
    ip = identity.addresses(request.app).of(owner_of(request)) if s.token else None
    if ip is not None:
        neighbours = identity.addresses(request.app).clients_at(ip)
        runs.prune(neighbours, s.run_quota_mb_per_ip * 1e6, float("inf"), keep=busy)
    return runs.new_run_folder(kind, owner=who)


def start_job(request: Request, kind: str, work, folder: Path) -> dict:
    """Hand a training iterator to the job manager; a refused job (429) leaves no empty run folder behind."""
    try:
        teacher = request.scope.get("pm_teacher", False)  # the teacher keeps to no share
        job = manager(request).start(kind, work, folder.name, owner=creator(request), share=not teacher)
    except HTTPException:
        if not any(p.name != runs.OWNER_FILE for p in folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"job": job.describe()}


def clean(x):
    """Make a nested event payload fit for JSON: floats rounded, and null where not finite."""
    return json_numbers(x, 8)


# ----------------------------------------------------------------------------- jobs


@router.post("/pretrain", summary="Start (or resume) a pre-training job; returns its id at once")
def start_pretrain(req: PretrainRequest, request: Request) -> dict:
    step_cap(request, req.steps)
    corpus = None
    if req.text is not None:
        try:
            corpus = corpus_mod.user_text(req.text)
        except corpus_mod.CorpusError as e:  # "the text is empty", "... is only 12 characters", ...
            raise unprocessable("text", str(e).removeprefix("the text ")) from None
    cfg = pretrain.live_config(
        tokenizer=req.tokenizer, vocab_size=req.vocab_size, corpus_chars=req.corpus_chars, steps=req.steps,
        batch_size=req.batch_size, context=req.context, lr=req.lr, eval_every=req.eval_every,
        sample_every=req.sample_every, seed=req.seed,
    )
    if req.resume is not None and not re.match(RUN_ID, req.resume):  # checked here for a plain-words message
        raise unprocessable("resume", "there is no saved run to resume by that name: give a run id from "
                                      "GET /api/curriculum/runs "
                                      "(a pre-training run that was paused or stopped)")
    if req.resume:
        folder = runs.runs_dir() / req.resume
        record = runs.read_run(folder)
        missing = f"resume: no pre-training run called {req.resume!r}; GET /api/curriculum/runs lists them"
        if record is None or record.get("kind") != "pretrain":
            raise HTTPException(404, missing)
        check_owner(request, req.resume, folder, missing)
        if any(j.folder == req.resume for j in manager(request).running()):
            raise HTTPException(409, f"resume: the run {req.resume!r} is still training; stop it first")
    else:
        folder = new_folder(request, "pretrain")
    resume = bool(req.resume)
    answer = start_job(request, "pretrain",
                       lambda stop, pause: pretrain.pretrain(cfg, folder, corpus, stop, pause, resume=resume),
                       folder)
    ignored = sorted(req.model_fields_set - {"resume"}) if resume else []
    if ignored:  # a resumed run continues with the settings it was started with, never the request's
        answer |= {"ignored": ignored, "note": "resume: the run continues with its own settings; "
                                               f"these were not used: {', '.join(ignored)}"}
    return answer


@router.post("/finetune",
             summary="Start a fine-tuning job on the project's conversations; returns its id at once")
def start_finetune(req: FinetuneRequest, request: Request) -> dict:
    step_cap(request, req.steps)
    base = run_folder(req.base, "base", request)
    cfg = loop.fit_warmup(replace(FT, steps=req.steps, batch_size=req.batch_size, lr=req.lr,
                                  eval_every=req.eval_every, sample_every=req.eval_every, seed=req.seed))
    folder = new_folder(request, "finetune")
    return start_job(request, "finetune", lambda stop, pause: ft.finetune(cfg, base, folder, stop, pause),
                     folder)


@router.post("/lora",
             summary="Advanced: start a LoRA job that teaches SmolLM2-135M-Instruct to talk like a pirate")
def start_lora(req: LoraRequest, request: Request) -> dict:
    step_cap(request, req.steps)
    cfg = replace(LORA, rank=req.rank, alpha=2.0 * req.rank, layers=req.layers, steps=req.steps, lr=req.lr)
    folder = new_folder(request, "lora")

    def work(stop, pause):
        # Loading the 135M model takes seconds: it happens here, in the job's thread, not the request's.
        lm = models.load(models.DEFAULT_MODEL)
        yield from lora.lora_finetune(lm, cfg, folder, stop, pause)

    return start_job(request, "lora", work, folder)


@router.get("/jobs", summary="Training jobs of this server: running, paused and recently ended")
def list_jobs(request: Request) -> dict:
    m = manager(request)
    return {"jobs": [j.describe() for j in m.visible(owner_of(request))], "max_running": m.max_running,
            "pause_timeout_s": m.pause_timeout_s}


@router.get("/jobs/{job_id}", summary="One job's status")
def get_job(job_id: Annotated[str, Field(pattern=RUN_ID)], request: Request) -> dict:
    return {"job": manager(request).get(job_id, owner=owner_of(request)).describe()}


@router.post("/jobs/{job_id}/events",
             summary="Follow a job as server-sent events, from event number `after` on",
             response_description="text/event-stream of the training events, ending with `done` or `error`",
             responses=SSE_RESPONSES)
async def follow_job(job_id: Annotated[str, Field(pattern=RUN_ID)], req: FollowRequest, request: Request):
    m = manager(request)
    job = m.get(job_id, owner=owner_of(request))

    async def events():
        async for name, data in m.follow(job, req.after):
            if await request.is_disconnected():
                return  # the job goes on; the page can follow it again later
            yield sse(name, clean(data))

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/jobs/{job_id}/{action}",
             summary="Pause, resume or stop a job (takes effect within one optimizer step)")
def control_job(job_id: Annotated[str, Field(pattern=RUN_ID)], action: Literal["pause", "resume", "stop"],
                request: Request) -> dict:
    return {"job": manager(request).control(job_id, action, owner=owner_of(request)).describe()}


# ----------------------------------------------------------------------------- checkpoints and comparison


@router.get("/runs", summary="Checkpoints on disk: the shipped models and every run of this user")
def list_runs(request: Request) -> dict:
    return {"runs": clean(runs.list_runs(viewer=owner_of(request))),
            "folder": models.shown_path(runs.runs_dir())}


def _frozen(folder: str) -> models.LanguageModel:
    """A checkpoint folder loaded once per process (models.load caches it), frozen for inference."""
    return models.load(folder)


def _compared(name: str, field: str, request: Request) -> models.LanguageModel:
    """A shipped model (loaded once), or a run's checkpoint from a small cache that forgets the least
    recently compared (comparing 30 runs no longer keeps 30 models in memory) and the runs deleted
    since; a run trained further has a new checkpoint, so a new entry: never stale weights."""
    COMPARED.forget(lambda key: not Path(key[0]).exists())  # a deleted run's model is freed now
    path = run_folder(name, field, request)
    if name in runs.SHIPPED:
        return _frozen(str(path))
    stamp = (path / "prediction-machine.json").stat().st_mtime_ns  # a newer checkpoint: a new entry
    return COMPARED.get(request.app, (str(path), stamp),
                        lambda: models.LanguageModel(name, weights.read_folder(path)))


@router.post("/compare",
             summary="Base vs tuned on one question: both answers and the first answer token's distribution")
def compare(req: CompareRequest, request: Request) -> dict:
    tuned = _compared(req.tuned, "tuned", request)
    base_name = req.base or runs.base_of(req.tuned) or "shakespeare-base"  # the run records its start
    base = _compared(base_name, "base", request)
    if base.tokenizer.json != tuned.tokenizer.json:
        raise HTTPException(409, "tuned: was not fine-tuned from this base (their vocabularies differ)")
    context = min(base.model.cfg.max_seq_len, tuned.model.cfg.max_seq_len)
    if (problem := ft.question_fits(base.tokenizer, req.question, context)) is not None:
        raise unprocessable("question", problem)
    return clean({**ft.compare(base.model, tuned.model, base.tokenizer, req.question, req.k),
                  "base_name": base_name})


@router.get("/finetune/data", summary="The fine-tuning set: counts, a few examples, and the loss mask of one")
def finetune_data() -> dict:
    base = models.shipped_checkpoint("shakespeare-base")
    tok = _frozen(str(base)).tokenizer if (base / "prediction-machine.json").is_file() else None
    return ft.data_summary(tok)


@router.get("/scale", summary="This machine's measured FLOP/s beside published training budgets")
def scale_panel() -> dict:
    return clean(scale.panel())
