"""Continuous batching: one pass over the weights advances every student's generation at once.

Decoding one token for one sequence streams all 135M weights from memory to compute a
handful of matrix-vector products. Decoding for 32 sequences in the same pass streams the
same weights once and turns those products into small matrix-matrix products, which the CPU
does at nearly the same cost. So a classroom is served by one background loop:

    loop: start a group of newcomers (their shared prompt beginnings copied from the prefix cache)
          -> one prefill pass: the next chunk of every newcomer's prompt, together
             (a newcomer whose prompt is now read emits its first token and joins the batch)
          -> one decode pass over all running rows (each row at its own length in the KV cache)
          -> every row's next token sampled in one batched call (generation.choose)
          -> drop finished and cancelled rows

Chunked prefill (as in vLLM and Sarathi-Serve): a long prompt is read a chunk per turn, so the
rows already decoding still get a token every turn instead of waiting for the whole prompt.
Within a group every newcomer reads the same number of tokens per pass; the group is kept in
order of tokens left, so the rows still reading are always the first ones of its cache.

Rows of different lengths share one transformer.KVCache: every row has its own length, and
the causal mask lets a row's query see only its own filled positions. Each request carries
its own torch.Generator, so the same seed gives the same tokens whoever else is in the batch.
Its steps are the `generation.Step`s that generation.generate yields, from the same choose().

Memory (engine/memory.py): the batch cache grows its rows and its positions separately, only
to what the running rows need, and one layer at a time. Each request reserves its worst case
before it starts; with a `max_kv_bytes` budget, a request that would pass it waits its turn.
How many sequences may decode together is the caller's limit (web/admission.Slots); `max_rows`
here is only a safety net.

Reference: continuous ("iteration-level") batching from Orca (Yu et al., OSDI 2022).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from prediction_machine.engine import memory, priority
from prediction_machine.engine.prefix_cache import DEFAULT_BYTES, PrefixCache
from prediction_machine.inference.generation import Step, check_prompt, choose, finish_reason
from prediction_machine.inference.sampling import SamplingParams, make_generator
from prediction_machine.model.transformer import KVCache

GROW = memory.GROW  # KV-cache positions added at a time, so memory follows what is really in use
# Prompt tokens read per loop turn. A prefill pass pauses every running row, so while rows are
# decoding it is kept short: each student's next token waits for at most one such pass.
PREFILL_BUDGET_IDLE = 512
PREFILL_BUDGET_BUSY = 128
# ... unless this many times as many newcomers wait as rows run (a class pressing Generate at
# once): then one long pass that starts them all helps more students than its pause holds up.
PREFILL_CROWD = 4
MIN_CHUNK = 16  # fewer tokens per row than this and a prefill pass is mostly overhead
# A class pressing Generate at once reaches an idle loop over a few ms: it waits while they keep coming
# (each within the gap of the last, the max in all), so they start as one group, not behind the first.
ARRIVAL_GAP_S, ARRIVAL_MAX_S = 0.010, 0.100


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
    filled: int = 0  # prompt positions in the KV cache so far
    reused: int = 0  # ... of which were copied from the prefix cache
    reserved: int = 0  # bytes of KV memory held for it (memory.request_bytes)

    def cancel(self) -> None:
        self.cancelled.set()


class Batcher:
    """A background decode loop shared by every request for one decoder (a Transformer or a FusedDecoder)."""

    def __init__(self, decoder, max_rows: int = 32, max_kv_bytes: int | None = None,
                 prefix_bytes: int = DEFAULT_BYTES, idle_s: float = 30.0):
        self.decoder, self.cfg, self.max_rows = decoder, decoder.cfg, max_rows
        self.idle_s = idle_s  # how long the loop's thread waits for work before it ends
        self.max_kv_bytes = max_kv_bytes  # None: no budget
        self.prefixes = PrefixCache(prefix_bytes) if prefix_bytes > 0 else None
        self.pending: list[Request] = []
        self.filling: list[Request] = []  # the group being prefilled; row i of self.fill is filling[i]
        self.fill: KVCache | None = None
        self.rows: list[Request] = []  # running requests; row i of self.cache belongs to rows[i]
        self.cache: KVCache | None = None
        self.reserved = 0  # bytes reserved by requests in self.filling and self.rows
        self.wake = threading.Condition()
        self.thread: threading.Thread | None = None
        self.last_arrival = 0.0  # time.monotonic() of the latest submit
        self.steps_run = self.prefill_passes = 0  # forward passes so far (for tests and benchmarks)
        self.grows, self.peak_rows, self.peak_positions = 0, 0, 0  # how the batch cache grew
        self.plan: memory.WorstCase | None = None  # set by batcher_for when a server's limits are known

    # ------------------------------------------------------------------ the public face

    def submit(self, prompt_ids: list[int], params: SamplingParams, max_new_tokens: int,
               stop_ids: set[int] = frozenset(), seed: int | None = None, top_n: int = 10,
               out=None) -> Request:
        """Queue a generation. Its Steps, then None, are put into `out` (anything with a queue's
        `put`, such as the web layer's feed; a new queue.Queue by default) from the loop's thread."""
        check_prompt(prompt_ids, self.cfg.max_seq_len)
        need = memory.request_bytes(self.cfg, len(prompt_ids), max_new_tokens)
        if self.max_kv_bytes is not None and need > self.max_kv_bytes:
            raise ValueError(f"this request needs {need / memory.MB:.0f} MB of KV cache; the memory budget "
                             f"leaves {self.max_kv_bytes / memory.MB:.0f} MB: ask for fewer tokens")
        req = Request(list(prompt_ids), params, max_new_tokens, set(stop_ids), top_n,
                      None if params.greedy else make_generator(seed), ids=list(prompt_ids))
        if out is not None:
            req.out = out
        with self.wake:
            self.pending.append(req)
            self.last_arrival = time.monotonic()
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
                self._let_go_of_cancelled()
                while not self.filling and not self.rows and not self._admissible():
                    priority.GATE.generating(self, False)  # nothing to decode: heavy work goes at full speed
                    if not self.wake.wait(timeout=self.idle_s) and not self.pending:
                        self.cache = self.fill = None
                        self.thread = None  # idle: let the thread end; submit() starts another
                        return
                priority.GATE.generating(self, True)  # heavy work now steps aside between its layers
                if not self.filling:
                    self._let_the_crowd_arrive()
                    self._start_group()
            try:
                with torch.inference_mode():
                    if self.filling:
                        self._prefill_pass()
                    if self.rows:
                        self._decode()
            except Exception as e:  # noqa: BLE001 - handed to every affected consumer, the loop lives on
                for r in dict.fromkeys(self.filling + self.rows):  # a request joining the batch is in both
                    r.out.put(e)
                    r.out.put(None)
                self.filling, self.rows, self.fill, self.cache, self.reserved = [], [], None, None, 0

    def _let_the_crowd_arrive(self) -> None:
        """If nothing runs, wait while requests keep arriving (see ARRIVAL_GAP_S)."""
        first = time.monotonic()
        while not self.rows:
            now = time.monotonic()
            if now - first >= ARRIVAL_MAX_S or now - self.last_arrival >= ARRIVAL_GAP_S:
                return
            # A submit wakes us early (and re-arms the gap).
            self.wake.wait(ARRIVAL_GAP_S - (now - self.last_arrival))

    def _let_go_of_cancelled(self) -> None:
        """Requests cancelled while still waiting end at once: their consumers are not kept waiting."""
        for r in [r for r in self.pending if r.cancelled.is_set()]:
            self.pending.remove(r)
            r.out.put(None)

    def _admissible(self) -> bool:
        """Is there a pending request that could start now?"""
        self._let_go_of_cancelled()
        return bool(self.pending) and self._fits(self.pending[0])

    def _fits(self, req: Request) -> bool:
        need = memory.request_bytes(self.cfg, len(req.prompt_ids), req.max_new_tokens)
        return self.max_kv_bytes is None or self.reserved + need <= self.max_kv_bytes

    def _prefill_budget(self) -> int:
        """Prompt tokens to read this turn: few while rows decode, many when none do or a crowd waits."""
        waiting = len(self.pending) + len(self.filling)
        if not self.rows or waiting >= PREFILL_CROWD * len(self.rows):
            return PREFILL_BUDGET_IDLE
        return PREFILL_BUDGET_BUSY

    def _start_group(self) -> None:
        """Move newcomers from pending to a prefill group, first come first served, within rows and memory."""
        budget = self._prefill_budget()
        take = []
        while (self.pending and len(self.rows) + len(take) < self.max_rows and len(take) < budget // MIN_CHUNK
               and self._fits(self.pending[0])):
            r = self.pending.pop(0)
            if r.cancelled.is_set():
                r.out.put(None)
                continue
            r.reserved = memory.request_bytes(self.cfg, len(r.prompt_ids), r.max_new_tokens)
            self.reserved += r.reserved
            take.append(r)
        if not take:
            return
        found = {id(r): self.prefixes.lookup(r.prompt_ids) if self.prefixes else (None, 0) for r in take}
        take.sort(key=lambda r: len(r.prompt_ids) - found[id(r)][1], reverse=True)  # most tokens left first
        self.fill = KVCache(self.cfg, len(take), max(len(r.prompt_ids) for r in take))
        for row, r in enumerate(take):
            entry, n = found[id(r)]
            if entry is not None:
                self.prefixes.copy_into(entry, n, self.fill, row)
            r.filled = r.reused = n
        self.filling = take

    def _prefill_pass(self) -> None:
        """Read the next chunk of every newcomer's prompt in one pass; the ones done emit and join."""
        m = len(self.filling)
        left = [len(r.prompt_ids) - r.filled for r in self.filling]  # most first
        budget = self._prefill_budget()
        cap = max(MIN_CHUNK, budget // m)  # tokens per row this pass
        if m > 1 and left[0] <= cap and all(len(r.prompt_ids) >= left[0] for r in self.filling):
            # Every newcomer can finish now. Those with fewer tokens left re-read a few they already
            # hold (same inputs, so the same keys and values), and all end together: one pass
            # instead of one per distinct length.
            T = left[0]
            for i, r in enumerate(self.filling):
                r.filled = len(r.prompt_ids) - T
                self.fill.lengths[i] = r.filled
        else:
            T = min(left[-1], cap)  # the same T for every row of the pass
        x = torch.tensor([r.prompt_ids[r.filled : r.filled + T] for r in self.filling])  # (m, T)
        t0 = time.perf_counter()
        logits, _ = self.decoder(x, cache=self.fill.head(m), last_only=True)  # (m, 1, V)
        ms = (time.perf_counter() - t0) * 1000
        self.prefill_passes += 1
        for r in self.filling:
            r.filled += T
        first_done = next(i for i in range(m + 1)
                          if i == m or self.filling[i].filled == len(self.filling[i].prompt_ids))
        done = self.filling[first_done:]
        # `done` stays in self.filling until it has joined the batch: if anything below raises,
        # the loop's handler finds every request in filling or rows and tells each one.
        if self.prefixes is not None:
            for i, r in enumerate(done, start=first_done):
                self.prefixes.store(r.prompt_ids, self.fill, i)
        going = self._emit(done, logits[first_done:, -1], [len(r.prompt_ids) for r in done], ms)
        joining = [(first_done + i, r) for i, (r, on) in enumerate(zip(done, going, strict=True)) if on]
        if joining:
            B = len(self.rows)
            longest = max(len(r.prompt_ids) for _, r in joining)
            self._reserve(B + len(joining), longest + 1, [r for _, r in joining])
            for j, (i, r) in enumerate(joining):
                self.fill.copy_row(i, self.cache, B + j)  # its prompt positions become a row of the batch
                self.rows.append(r)
        self.filling = self.filling[:first_done]
        if not self.filling:
            self.fill = None

    def _decode(self) -> None:
        """One forward pass for every running row, then one sampled token per row."""
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
        logits, _ = self.decoder(x, cache=self.cache.head(B), last_only=True)  # (B, 1, V)
        ms = (time.perf_counter() - t0) * 1000
        self.steps_run += 1
        going = self._emit(self.rows, logits[:, -1], [c + 1 for c in cached], ms)
        for i in reversed(range(B)):
            if not going[i]:
                self._drop(i)

    def _emit(self, reqs: list[Request], logits: torch.Tensor, cached: list[int], ms: float) -> list[bool]:
        """Sample each request's next token from its row of logits (n, V); True for the rows that go on."""
        live, going = [i for i, r in enumerate(reqs) if not r.cancelled.is_set()], [False] * len(reqs)
        for i in set(range(len(reqs))) - set(live):
            reqs[i].out.put(None)
            self._release(reqs[i])
        if not live:
            return going
        rows = logits if len(live) == len(reqs) else logits[live]  # (n_live, V): no 6 MB copy when all stay
        picked = choose(rows, [reqs[i].params for i in live], [reqs[i].generator for i in live],
                        [reqs[i].top_n for i in live])
        for i, c in zip(live, picked, strict=True):
            r, d = reqs[i], c.draw
            index = len(r.ids) - len(r.prompt_ids)
            r.ids.append(d.id)
            finish = finish_reason(d.id, r.stop_ids, index + 1, r.max_new_tokens, len(r.ids),
                                   self.cfg.max_seq_len)
            r.out.put(Step(index, d.id, d.prob, c.model_prob, c.prediction, d, cached[i], ms, finish))
            if finish:
                r.out.put(None)
                self._release(r)
            going[i] = finish is None
        return going

    def _release(self, req: Request) -> None:
        self.reserved -= req.reserved
        req.reserved = 0

    # ------------------------------------------------------------------ the shared KV cache

    # The cache has room for at least the running rows; rows 0..B-1 are the running ones, in
    # the order of self.rows. A newcomer takes row B, and a row that ends is filled by moving
    # the last row into its place: joining and leaving copy one row, not the whole cache.

    def _drop(self, i: int) -> None:
        """Free row i by moving the last running row into it."""
        self._release(self.rows[i])
        last = len(self.rows) - 1
        if i != last:
            self.cache.copy_row(last, self.cache, i)
            self.rows[i] = self.rows[last]
        self.rows.pop()
        if not self.rows:
            self.cache = None  # nobody left: give the memory back

    def _reserve(self, rows: int, positions: int, joining: list[Request] = ()) -> None:
        """Make sure the cache has `rows` rows and `positions` positions: each grown only as far as needed."""
        old = self.cache
        have_rows, have_pos = (0, 0) if old is None else (len(old.lengths), old.max_len)
        if have_rows >= rows and have_pos >= positions:
            return
        # No row goes beyond its prompt and its new tokens.
        furthest = max(len(r.prompt_ids) + r.max_new_tokens for r in self.rows + list(joining))
        n_pos = max(have_pos, positions, min(furthest, self.cfg.max_seq_len, (positions // GROW + 1) * GROW))
        self._grow(max(have_rows, rows), n_pos)

    def _grow(self, n_rows: int, n_pos: int) -> None:
        """A bigger cache holding the running rows, built one layer at a time (old layers freed as it
        goes)."""
        old, B = self.cache, len(self.rows)
        new = KVCache(self.cfg, n_rows, 0)  # rows and lengths only; the layers come next
        new.max_len = n_pos
        S = int(old.lengths[:B].max()) if old is not None and B else 0
        for sides in ((new.k, None if old is None else old.k), (new.v, None if old is None else old.v)):
            mine, theirs = sides
            for layer in range(self.cfg.n_layers):
                t = torch.zeros(n_rows, n_pos, self.cfg.n_kv_heads, self.cfg.head_dim)  # (rows, S_max, K, hd)
                if theirs is not None:
                    t[:B, :S] = theirs[layer][:B, :S]
                    # The old layer goes now: growing costs one layer, not a second cache.
                    theirs[layer] = None
                mine[layer] = t
        if old is not None:
            new.lengths[:B] = old.lengths[:B]
        self.cache = new
        self.grows += 1
        self.peak_rows, self.peak_positions = max(self.peak_rows, n_rows), max(self.peak_positions, n_pos)
