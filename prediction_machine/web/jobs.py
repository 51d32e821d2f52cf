"""A bounded manager for training jobs that outlive the request that started them.

A job is a training iterator (pretrain, finetune, lora) running in its own thread. The
request that starts it returns at once with the job's id; the page then follows its events
over server-sent events, and may pause, resume or stop it. Stop and pause are flags the
training loop checks before every optimizer step, so they take effect within one step.

At most `max_running` jobs run (or sit paused, holding their memory) at once; one more gets
a 429 with Retry-After. When a job ends, its model and optimizer go out of scope with the
iterator, and only its event log (numbers and short texts) is kept, for the last few jobs.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
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
                "last_step": last}

    def push(self, name: str, data: dict) -> None:
        with self.changed:
            if name == "step" and len(self.events) >= MAX_EVENTS:
                return  # the curve already has thousands of points; the checkpoint keeps the full history
            self.events.append((name, data))
            self.changed.notify_all()


class JobManager:
    def __init__(self, max_running: int):
        self.max_running = max_running
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.counter = itertools.count(1)

    def running(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.active]

    def start(self, kind: str, work: Work, folder: str | None = None) -> Job:
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
            job = Job(f"{kind}-{next(self.counter)}-{int(time.time())}", kind, folder)
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

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"job: no job {job_id!r} (finished jobs are forgotten after a while; "
                                     "their checkpoints stay on disk)")
        return job

    def control(self, job_id: str, action: str) -> Job:
        job = self.get(job_id)
        if action == "stop":
            job.stop_flag.set()
            job.pause_flag.clear()
        elif action == "pause":
            job.pause_flag.set()
        elif action == "resume":
            job.pause_flag.clear()
        return job

    async def follow(self, job: Job, after: int = 0) -> AsyncIterator[tuple[str, dict]]:
        """Every event from index `after` on, as it arrives, until the job has ended."""
        i, sent = after, False
        while True:
            while i < len(job.events):
                yield job.events[i]
                i, sent = i + 1, True
            if job.ended is not None and i >= len(job.events):
                if not sent and job.events:
                    yield job.events[-1]  # the terminal event: a follower from past the end still learns how it ended
                return
            await asyncio.sleep(0.1)
