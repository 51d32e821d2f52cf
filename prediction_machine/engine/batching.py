"""Continuous batching: one pass over the weights advances every student's generation at once.

Decoding one token for one sequence streams all 135M weights from memory to compute a
handful of matrix-vector products. Decoding for 32 sequences in the same pass streams the
same weights once and turns those products into small matrix-matrix products, which the CPU
does at nearly the same cost. So a classroom is served by one background loop:

    loop: admit new requests (prefill each prompt, emit its first token)
          -> one forward pass over all active rows (each row at its own length in the KV cache)
          -> for each row: sample with that request's own generator, emit a Step
          -> drop finished and cancelled rows

Rows of different lengths share one transformer.KVCache: every row has its own length, and
the causal mask lets a row's query see only its own filled positions. Each request carries
its own torch.Generator, so the same seed gives the same tokens whoever else is in the batch.
The steps are the same `generation.Step` objects that generation.generate yields, computed by
the same sampling and prediction functions.

The admission limit (how many sequences may decode together) is enforced by the caller, in
web/admission.Slots; `max_rows` here is only a safety net.

Reference: continuous ("iteration-level") batching from Orca (Yu et al., OSDI 2022).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from prediction_machine.inference.generation import Step, check_prompt, finish_reason
from prediction_machine.inference.prediction import predict
from prediction_machine.inference.sampling import SamplingParams, distribution, draw, make_generator
from prediction_machine.model.transformer import KVCache

GROW = 64  # KV-cache positions added at a time, so memory follows what is really in use
# Prompt tokens read per loop turn. A prefill pauses every running row, so while rows are
# decoding, newcomers are let in a few at a time: each student's next token never waits
# for a whole class of prompts to be read.
PREFILL_BUDGET_IDLE = 512
PREFILL_BUDGET_BUSY = 64


@dataclass(eq=False)
class Request:
    """One sequence in the batch, and the queue its steps come out of."""

    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int
    stop_ids: set[int]
    top_n: int
    generator: torch.Generator | None
    out: queue.Queue = field(default_factory=queue.Queue)  # Step, an Exception, or None at the end
    cancelled: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)  # prompt + generated so far
    cache: KVCache | None = None  # its prefilled prompt, a cache of one row, until it joins the batch

    def cancel(self) -> None:
        self.cancelled.set()


class Batcher:
    """A background decode loop shared by every request for one decoder (a Transformer or a FusedDecoder)."""

    def __init__(self, decoder, max_rows: int = 32):
        self.decoder, self.cfg, self.max_rows = decoder, decoder.cfg, max_rows
        self.pending: list[Request] = []
        self.rows: list[Request] = []  # active requests; row i of the cache belongs to rows[i]
        self.cache: KVCache | None = None
        self.wake = threading.Condition()
        self.thread: threading.Thread | None = None
        self.steps_run = 0  # batched forward passes so far (for tests and benchmarks)

    # ------------------------------------------------------------------ the public face

    def submit(self, prompt_ids: list[int], params: SamplingParams, max_new_tokens: int,
               stop_ids: set[int] = frozenset(), seed: int | None = None, top_n: int = 10) -> Request:
        check_prompt(prompt_ids, self.cfg.max_seq_len)
        req = Request(list(prompt_ids), params, max_new_tokens, set(stop_ids), top_n,
                      None if params.greedy else make_generator(seed), ids=list(prompt_ids))
        with self.wake:
            self.pending.append(req)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="pm-batcher", daemon=True)
                self.thread.start()
            self.wake.notify()
        return req

    def generate(self, prompt_ids: list[int], params: SamplingParams, max_new_tokens: int,
                 stop_ids: set[int] = frozenset(), seed: int | None = None, top_n: int = 10,
                 should_stop: Callable[[], bool] | None = None) -> Iterator[Step]:
        """Like generation.generate, but decoded together with everyone else's requests."""
        req = self.submit(prompt_ids, params, max_new_tokens, stop_ids, seed, top_n)
        try:
            while True:
                try:
                    item = req.out.get(timeout=0.05)
                except queue.Empty:
                    if should_stop is not None and should_stop():
                        return
                    continue
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
                if should_stop is not None and should_stop():
                    return
        finally:
            req.cancel()  # a consumer that stops early (or errors) frees its row

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while True:
            with self.wake:
                while not self.pending and not self.rows:
                    if not self.wake.wait(timeout=30):
                        if not self.pending and not self.rows:
                            self.cache = None
                            self.thread = None  # idle: let the thread end; submit() starts another
                            return
                new = self._take_pending()
            try:
                with torch.inference_mode():
                    joined = [r for r in new if self._prefill(r)]
                    self._join(joined)
                    if self.rows:
                        self._decode()
            except Exception as e:  # noqa: BLE001 - handed to every affected consumer, the loop lives on
                for r in new + self.rows:
                    r.out.put(e)
                    r.out.put(None)
                self.rows, self.cache = [], None

    def _take_pending(self) -> list[Request]:
        """Requests to admit this turn: as many as fit in the prefill budget (at least one)."""
        take, budget = [], PREFILL_BUDGET_BUSY if self.rows else PREFILL_BUDGET_IDLE
        while self.pending and len(self.rows) + len(take) < self.max_rows:
            if take and len(self.pending[0].prompt_ids) > budget:
                break
            req = self.pending.pop(0)
            budget -= len(req.prompt_ids)
            take.append(req)
        return take

    def _prefill(self, req: Request) -> bool:
        """Read the prompt into a cache of its own and emit the first token. True if it goes on."""
        if req.cancelled.is_set():
            req.out.put(None)
            return False
        T = len(req.prompt_ids)
        cache = KVCache(self.cfg, 1, T)
        t0 = time.perf_counter()
        logits, _ = self.decoder(torch.tensor([req.prompt_ids]), cache=cache, last_only=True)  # (1, 1, V)
        ms = (time.perf_counter() - t0) * 1000
        req.cache = cache
        return self._emit(req, logits[0, -1], cached=T, ms=ms)

    def _decode(self) -> None:
        """One forward pass for every active row, then one sampled token per row."""
        gone = [i for i, r in enumerate(self.rows) if r.cancelled.is_set()]
        for i in reversed(gone):  # a student who left costs no further pass over the weights
            self.rows[i].out.put(None)
            self._drop(i)
        if not self.rows:
            return
        B = len(self.rows)
        cached = self.cache.lengths[:B].tolist()
        self._reserve(B, max(cached) + 1)
        x = torch.tensor([[r.ids[-1]] for r in self.rows])  # (B, 1): each row's newest token
        t0 = time.perf_counter()
        logits, _ = self.decoder(x, cache=self._active_view(), last_only=True)  # (B, 1, V)
        ms = (time.perf_counter() - t0) * 1000
        self.steps_run += 1
        done = [i for i, r in enumerate(self.rows) if not self._emit(r, logits[i, -1], cached[i] + 1, ms)]
        for i in reversed(done):
            self._drop(i)

    def _emit(self, req: Request, logits: torch.Tensor, cached: int, ms: float) -> bool:
        """Sample the next token exactly as generation.generate does; True if the row goes on."""
        if req.cancelled.is_set():
            req.out.put(None)
            return False
        probs = distribution(logits, req.params)  # (V,), computed once for the draw and the table
        d = draw(probs, req.generator)
        index = len(req.ids) - len(req.prompt_ids)
        req.ids.append(d.id)
        finish = finish_reason(d.id, req.stop_ids, index + 1, req.max_new_tokens, len(req.ids), self.cfg.max_seq_len)
        req.out.put(Step(index, d.id, d.prob, predict(logits, req.params, req.top_n, probs), d, cached, ms, finish))
        if finish:
            req.out.put(None)
        return finish is None

    # ------------------------------------------------------------------ the shared KV cache

    # The cache has room for more rows than are active; rows 0..B-1 are the active ones, in
    # the order of self.rows. A newcomer takes row B, and a row that ends is filled by moving
    # the last row into its place: joining and leaving copy one row, not the whole cache.

    def _join(self, joined: list[Request]) -> None:
        for r in joined:
            B, T = len(self.rows), len(r.prompt_ids)
            self._reserve(B + 1, T + 1)
            r.cache.copy_row(0, self.cache, B)  # its T prompt positions become row B
            r.cache = None  # the batch cache holds them now
            self.rows.append(r)

    def _drop(self, i: int) -> None:
        """Free row i by moving the last active row into it."""
        last = len(self.rows) - 1
        if i != last:
            self.cache.copy_row(last, self.cache, i)
            self.rows[i] = self.rows[last]
        self.rows.pop()
        if not self.rows:
            self.cache = None  # nobody left: give the memory back

    def _reserve(self, rows: int, positions: int) -> None:
        """Make sure the cache has at least `rows` rows and `positions` positions; grow by copying."""
        old = self.cache
        if old is not None and len(old.lengths) >= rows and old.max_len >= positions:
            return
        if old is None or len(old.lengths) < rows:
            n_rows = max(rows, 2 * len(self.rows))  # more rows: leave room for a few newcomers
        else:
            n_rows = rows  # only longer: keep just the rows in use (doubling them here cost GBs)
        n_pos = min(self.cfg.max_seq_len, (positions // GROW + 2) * GROW)  # room for GROW more steps
        if old is not None:
            n_pos = max(n_pos, old.max_len)
        cache = KVCache(self.cfg, n_rows, n_pos)
        if old is not None:
            old.copy_rows(len(self.rows), cache)  # the active rows, 0..B-1
        self.cache = cache

    def _active_view(self) -> KVCache:
        """Rows 0..B-1 of the cache as a KVCache of batch B: views, so the model writes in place."""
        return self.cache.head(len(self.rows))  # L x (B, S_max, K, hd), lengths (B,)


_batchers: dict[int, Batcher] = {}
_batchers_lock = threading.Lock()


def batcher_for(decoder, max_rows: int = 32) -> Batcher:
    """The one batcher of a decoder (a Transformer or a fastpath.FusedDecoder), created on first use."""
    with _batchers_lock:
        b = _batchers.get(id(decoder))
        if b is None or b.decoder is not decoder:
            b = _batchers[id(decoder)] = Batcher(decoder, max_rows)
        b.max_rows = max(b.max_rows, max_rows)
        return b
