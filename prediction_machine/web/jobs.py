"""A bounded manager for training jobs that outlive the request that started them.

A job is a training iterator (pretrain, finetune, lora) running in its own thread. The
request that starts it returns at once with the job's id; the page then follows its events
over server-sent events, and may pause, resume or stop it. Stop and pause are flags the
training loop checks before every optimizer step, so they take effect within one step.

At most `max_running` jobs run (or sit paused, holding their memory) at once; the next ones
wait in a bounded queue (`max_queued`), each told its position in a `queued` event, and start
in turn as places free; past the queue, a 429 with Retry-After. In classroom mode each owner
may hold `per_client` jobs (running, paused or waiting) and each address `per_ip`, counting
every client id last seen from it (web/identity.py), so new ids cannot take every place.

A job paused for longer than `pause_timeout_s` is stopped (it writes its checkpoint), so two
forgotten paused jobs cannot block everyone's training. When a job ends, its model and
optimizer go out of scope with the iterator, and only its event log
(numbers and short texts) is kept, for the last few jobs.

Ownership: a job belongs to the `owner` that started it (the client id of web/security.py).
`get` and `control` given an owner answer someone else's job as a missing one (404);
owner=None means "may touch every job" (the laptop user, the teacher). Job ids are random, never guessable.
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
    status: str = "running"  # queued, running, paused, finished, stopped, error
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

    work: Work | None = None  # kept only while the job waits in the queue
    position: int | None = None  # its place in the queue (1: next), while it waits

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running", "paused")

    def describe(self) -> dict:
        last = {}
        for name, data in reversed(self.events):
            if name == "step":
                last = data
                break
        return {"id": self.id, "kind": self.kind, "folder": self.folder, "status": self.status,
                "started": self.started, "ended": self.ended, "events": len(self.events), "error": self.error,
                "last_step": last, "stopped_because": self.stopped_because, "position": self.position}

    def push(self, name: str, data: dict) -> None:
        if isinstance(data.get("folder"), str):  # trainers name their folder's path: students see its run id
            data = {**data, "folder": os.path.basename(data["folder"])}
        with self.changed:
            if name == "step" and len(self.events) >= MAX_EVENTS:
                return  # the curve already has thousands of points; the checkpoint keeps the full history
            self.events.append((name, data))
            self.changed.notify_all()


class JobManager:
    def __init__(self, max_running: int, pause_timeout_s: float = 600.0, max_queued: int = 0,
                 per_client: int | None = None, per_ip: int | None = None,
                 address_of: Callable[[str | None], str | None] = lambda owner: None):
        self.max_running = max_running
        self.pause_timeout_s = pause_timeout_s
        self.max_queued, self.per_client, self.per_ip = max_queued, per_client, per_ip
        self.address_of = address_of  # owner -> the address it was last seen from (classroom mode)
        self.jobs: dict[str, Job] = {}
        self.queue: list[Job] = []  # waiting jobs, first in line first
        self.lock = threading.Lock()

    def running(self) -> list[Job]:
        """Every job not yet ended: running, paused or waiting in the queue."""
        return [j for j in self.jobs.values() if j.active]

    def visible(self, owner: str | None = None) -> list[Job]:
        """The jobs `owner` may see: its own, or every job for owner=None."""
        return [j for j in self.jobs.values() if owner is None or j.owner == owner]

    def start(self, kind: str, work: Work, folder: str | None = None, *, owner: str | None = None,
              share: bool = True) -> Job:
        """Start `work(should_stop, should_pause)` in a thread, queue it when every place is taken,
        or refuse with 429 (this owner or address already holds its share, or the queue is full).
        share=False: the owner has no share to keep to (the teacher)."""
        with self.lock:
            if share:
                self._check_share(owner)
            places = [j for j in self.running() if j.status != "queued"]
            full = len(places) >= self.max_running
            if full and len(self.queue) >= self.max_queued:
                raise HTTPException(
                    429,
                    f"{len(places)} training jobs are already running (the limit is {self.max_running}) "
                    f"and {len(self.queue)} waiting (the limit is {self.max_queued}); try again later",
                    headers={"Retry-After": "30"},
                )
            job = Job(f"{kind}-{secrets.token_urlsafe(12)}", kind, folder, owner=owner)
            self.jobs[job.id] = job
            self._forget_old()
            if full:
                job.status, job.work = "queued", work
                self.queue.append(job)
                self._tell_positions()
                return job
        self._launch(job, work)
        return job

    def _check_share(self, owner: str | None) -> None:
        if owner is None:
            return
        mine = [j for j in self.running() if j.owner == owner]
        if self.per_client is not None and len(mine) >= self.per_client:
            raise HTTPException(429, f"you already have {len(mine)} training job running or waiting (the "
                                     f"limit per person is {self.per_client}): stop it or wait for it "
                                     "to finish", headers={"Retry-After": "30"})
        ip = self.address_of(owner)
        if self.per_ip is not None and ip is not None:
            ours = [j for j in self.running() if j.owner is not None and self.address_of(j.owner) == ip]
            if len(ours) >= self.per_ip:
                raise HTTPException(429, f"your network address already holds {len(ours)} training jobs (the "
                                         f"limit per address is {self.per_ip}); try again when one finishes",
                                    headers={"Retry-After": "30"})

    def _launch(self, job: Job, work: Work) -> None:
        job.status, job.position, job.work = "running", None, None
        threading.Thread(target=self._run, args=(job, work), name=f"pm-job-{job.id}", daemon=True).start()

    def _tell_positions(self) -> None:
        """Each waiting job learns its place in line (under self.lock)."""
        for n, waiting in enumerate(self.queue, 1):
            if waiting.position != n:
                waiting.position = n
                waiting.push("queued", {"position": n, "places": self.max_running,
                                        "waiting": len(self.queue)})

    def _next(self) -> None:
        """A place was freed: the first job in line starts."""
        with self.lock:
            busy = len([j for j in self.running() if j.status != "queued"])
            if busy >= self.max_running or not self.queue:
                return
            job = self.queue.pop(0)
            work = job.work
            self._tell_positions()
        self._launch(job, work)

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
            self._next()

    def _forget_old(self) -> None:
        done = [j for j in self.jobs.values() if not j.active]
        for j in sorted(done, key=lambda j: j.started)[:-KEEP_FINISHED or None]:
            del self.jobs[j.id]

    def get(self, job_id: str, *, owner: str | None = None) -> Job:
        job = self.jobs.get(job_id)
        # someone else's job answers exactly as a missing one: its existence is not revealed
        if job is None or (owner is not None and job.owner != owner):
            raise HTTPException(404, f"job: no job {job_id!r} (finished jobs are forgotten after a while; "
                                     "their checkpoints stay on disk)")
        return job

    def control(self, job_id: str, action: str, *, owner: str | None = None) -> Job:
        job = self.get(job_id, owner=owner)
        with self.lock:
            waiting = job in self.queue
            if waiting and action == "stop":  # it never ran: it leaves the line, and the rest move up
                self.queue.remove(job)
                job.status, job.position, job.work = "stopped", None, None
                self._tell_positions()
        if waiting and action == "stop":
            job.push("done", {"status": "stopped"})
            job.ended = time.time()
            return job
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
