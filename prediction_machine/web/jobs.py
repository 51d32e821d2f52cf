"""A bounded manager for training jobs that outlive the request that started them.

A job is a training iterator (pretrain, finetune, lora) running in its own thread. The
request that starts it returns at once with the job's id; the page then follows its events
over server-sent events, and may pause, resume or stop it. Stop and pause are flags the
training loop checks before every optimizer step, so they take effect within one step.

At most `max_running` jobs run (or sit paused, holding their memory) at once; one more gets
a 429 with Retry-After. A job paused for longer than `pause_timeout_s` is stopped (it writes
its checkpoint), so two forgotten paused jobs cannot block everyone's training. When a job
ends, its model and optimizer go out of scope with the iterator, and only its event log
(numbers and short texts) is kept, for the last few jobs.

Ownership: a job belongs to the `owner` that started it (the client id of web/security.py).
`get` and `control` given an owner refuse (403) someone else's job; owner=None means "may
touch every job" (the laptop user, the teacher). Job ids are random, never guessable.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException

MAX_EVENTS = 20_000  # per job: a long run's step events are thinned beyond this
KEEP_FINISHED = 8  # finished jobs whose event logs are kept for late readers

Work = Callable[[Callable[[], bool], Callable[[], bool]], Iterator[tuple[str, dict]]]


@dataclass
class Job:
    id: str
    kind: str  # "pretrain", "finetune" or "lora"
    folder: str | None
    status: str = "running"  # running, paused, finished, stopped, error
    started: float = field(default_factory=time.time)
    ended: float | None = None
    events: list[tuple[str, dict]] = field(default_factory=list)
    error: str | None = None
    stop_flag: threading.Event = field(default_factory=threading.Event)
    pause_flag: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    owner: str | None = None  # who started it (never shown in an answer: it would let others sign in as them)
    paused_since: float | None = None
    stopped_because: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ("running", "paused")

    def describe(self) -> dict:
        last = {}
        for name, data in reversed(self.events):
            if name == "step":
                last = data
                break
        return {"id": self.id, "kind": self.kind, "folder": self.folder, "status": self.status,
                "started": self.started, "ended": self.ended, "events": len(self.events), "error": self.error,
                "last_step": last, "stopped_because": self.stopped_because}

    def push(self, name: str, data: dict) -> None:
        if isinstance(data.get("folder"), str):  # trainers name their folder's path: students see its run id
            data = {**data, "folder": os.path.basename(data["folder"])}
        with self.changed:
            if name == "step" and len(self.events) >= MAX_EVENTS:
                return  # the curve already has thousands of points; the checkpoint keeps the full history
            self.events.append((name, data))
            self.changed.notify_all()


class JobManager:
    def __init__(self, max_running: int, pause_timeout_s: float = 600.0):
        self.max_running = max_running
        self.pause_timeout_s = pause_timeout_s
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def running(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.active]

    def visible(self, owner: str | None = None) -> list[Job]:
        """The jobs `owner` may see: its own, or every job for owner=None."""
        return [j for j in self.jobs.values() if owner is None or j.owner == owner]

    def start(self, kind: str, work: Work, folder: str | None = None, *, owner: str | None = None) -> Job:
        """Start `work(should_stop, should_pause)` in a thread, or refuse with 429 when full."""
        with self.lock:
            busy = self.running()
            if len(busy) >= self.max_running:
                raise HTTPException(
                    429,
                    f"{len(busy)} training jobs are already running (the limit is {self.max_running}); "
                    "stop one or wait for it to finish",
                    headers={"Retry-After": "30"},
                )
            job = Job(f"{kind}-{secrets.token_urlsafe(12)}", kind, folder, owner=owner)
            self.jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job, work), name=f"pm-job-{job.id}", daemon=True).start()
        return job

    def _run(self, job: Job, work: Work) -> None:
        iterator = None
        try:
            iterator = work(job.stop_flag.is_set, job.pause_flag.is_set)
            for name, data in iterator:
                if name == "paused":
                    job.status = "paused"
                elif name == "resumed":
                    job.status = "running"
                job.push(name, data)
            job.status = "stopped" if job.stop_flag.is_set() else "finished"
        except Exception as e:  # noqa: BLE001 - reported to the page as an event
            job.status, job.error = "error", f"{type(e).__name__}: {e}"
        finally:
            del iterator  # the model, optimizer and data go with it
            gc.collect()
            # The last event is always terminal: the run's own "done", or one added here, or "error".
            if job.error:
                job.push("error", {"error": job.error, "status": job.status})
            elif not job.events or job.events[-1][0] != "done":
                job.push("done", {"status": job.status})
            job.ended = time.time()

    def _forget_old(self) -> None:
        done = [j for j in self.jobs.values() if not j.active]
        for j in sorted(done, key=lambda j: j.started)[:-KEEP_FINISHED or None]:
            del self.jobs[j.id]

    def get(self, job_id: str, *, owner: str | None = None) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"job: no job {job_id!r} (finished jobs are forgotten after a while; "
                                     "their checkpoints stay on disk)")
        if owner is not None and job.owner != owner:
            raise HTTPException(403, f"job: {job_id!r} was started by someone else; "
                                     "only they and the teacher may use it")
        return job

    def control(self, job_id: str, action: str, *, owner: str | None = None) -> Job:
        job = self.get(job_id, owner=owner)
        if action == "stop":
            job.stop_flag.set()
            job.pause_flag.clear()
        elif action == "pause" and not job.pause_flag.is_set():
            job.pause_flag.set()
            job.paused_since = since = time.monotonic()
            timer = threading.Timer(self.pause_timeout_s, self._pause_expired, (job, since))
            timer.daemon = True
            timer.start()
        elif action == "resume":
            job.pause_flag.clear()
            job.paused_since = None
        return job

    def _pause_expired(self, job: Job, since: float) -> None:
        """Still paused since that same pause: stop it, so its place (and its memory) is freed."""
        if job.paused_since == since and job.pause_flag.is_set() and job.active:
            job.stopped_because = f"paused for more than {self.pause_timeout_s:g} s"
            job.stop_flag.set()
            job.pause_flag.clear()

    async def follow(self, job: Job, after: int = 0) -> AsyncIterator[tuple[str, dict]]:
        """Every event from index `after` on, as it arrives, until the job has ended."""
        i, sent = after, False
        while True:
            while i < len(job.events):
                yield job.events[i]
                i, sent = i + 1, True
            if job.ended is not None and i >= len(job.events):
                if not sent and job.events:
                    yield job.events[-1]  # the terminal event: a late follower learns how it ended
                return
            await asyncio.sleep(0.1)
