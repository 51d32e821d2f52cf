"""The server's batcher: one per decoder, its KV budget sized by the server's memory plan.

batching.Batcher runs the class's generations together; this module gives every route of a
server the same one for a decoder, with --max-memory (web.settings.ServerSettings) turned
into the KV-cache budget by memory.worst_case.
"""

from __future__ import annotations

import threading

from prediction_machine.engine import memory
from prediction_machine.engine.batching import PREFILL_BUDGET_IDLE, Batcher
from prediction_machine.engine.prefix_cache import DEFAULT_BYTES


def server_worst_case(cfg, limits, base_bytes: int | None = None) -> memory.WorstCase:
    """The memory worst case of a server with `limits` (web.settings.ServerSettings, or alike).

    The longest request: a prompt of max_prompt_tokens, then up to max_new_tokens continuation
    ids (Step and Play resume from them), then max_new_tokens new tokens.
    """
    return memory.worst_case(cfg, max_prompt_tokens=limits.max_prompt_tokens,
                             max_continuation=limits.max_new_tokens,
                             max_new_tokens=limits.max_new_tokens, max_running=limits.max_running,
                             prefix_cache_bytes=DEFAULT_BYTES, chunk_tokens=PREFILL_BUDGET_IDLE,
                             budget_bytes=limits.max_memory_mb * memory.MB, base_bytes=base_bytes)


_batchers: dict[int, Batcher] = {}
_batchers_lock = threading.Lock()


def batcher_for(decoder, max_rows: int = 32, limits=None) -> Batcher:
    """The one batcher of a decoder (a Transformer or a fastpath.FusedDecoder), created on first use.

    `limits` (web.settings.ServerSettings: max_memory_mb and the request limits) sets its KV
    budget when it is created: --max-memory minus what the process holds (or soon will: memory.base_bytes).
    """
    with _batchers_lock:
        b = _batchers.get(id(decoder))
        if b is None or b.decoder is not decoder:
            plan = None
            if limits is not None:
                plan = server_worst_case(decoder.cfg, limits, memory.base_bytes(decoder))
            b = _batchers[id(decoder)] = Batcher(decoder, max_rows, None if plan is None else plan.kv_budget)
            b.plan = plan  # the worst case its budget came from (serve prints it)
        b.max_rows = max(b.max_rows, max_rows)
        return b
