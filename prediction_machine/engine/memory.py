"""How much memory serving can take, worked out before the first request arrives.

The big, growing part of a server's memory is the KV cache: every position of every running
sequence keeps a key and a value vector per layer. For SmolLM2-135M that is

    30 layers x 2 (key, value) x 3 kv heads x 64 dims x 4 bytes = 46,080 bytes per position

so one request of 1,024 prompt tokens + 512 continuation ids + 512 new tokens holds about
94 MB, and 4 of them about 380 MB. The batcher (batching.py) reserves a request's worst
case before it starts and lets a request wait while the reservations would pass the budget:
the server slows down under load instead of being killed for running out of memory.

    worst case = what the process holds now (weights, tokenizer, Python)
               + max_running x one longest request (its rows in the batch cache, plus its
                 prompt's rows while they are read)
               + the prefix cache's limit
               + the working memory of one forward pass (activations, logits, one layer
                 of a cache being grown)
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from prediction_machine.config import ModelConfig

GROW = 64  # KV-cache positions the batch cache adds at a time (batching.py uses the same)
MB = 2**20
DEFAULT_MAX_MEMORY_MB = 4096  # half of an 8 GB laptop: the browser and the system keep the rest


def kv_bytes(cfg: ModelConfig, positions: int, rows: int = 1) -> int:
    """Bytes of float32 keys and values for `rows` sequences of `positions` positions."""
    return rows * positions * cfg.n_layers * 2 * cfg.n_kv_heads * cfg.head_dim * 4


def request_bytes(cfg: ModelConfig, prompt_tokens: int, max_new_tokens: int) -> int:
    """The most KV memory one request can hold: its batch-cache row, and its prompt's row while being read."""
    positions = min(cfg.max_seq_len, prompt_tokens + max_new_tokens + GROW)
    return kv_bytes(cfg, positions) + kv_bytes(cfg, prompt_tokens)


def pass_bytes(cfg: ModelConfig, rows: int, tokens: int, keys: int) -> int:
    """Working memory of one forward pass: `tokens` new positions in all, `rows` sequences, `keys`
    positions seen.

    Counted generously: the residual stream and its normalised copy, the fused q/k/v and
    gate/up products, the attention scores of one layer (B, H, T, S) and their softmax, the
    last positions' logits and the few (B, V) tensors sampling makes from them, and one layer
    of a batch cache being grown.
    """
    D, F, H = cfg.d_model, cfg.d_ff, cfg.n_heads
    per_token = 4 * (6 * D + 2 * (H + 2 * cfg.n_kv_heads) * cfg.head_dim + 4 * F)
    scores = 4 * 3 * H * tokens * keys
    logits = 4 * 8 * rows * cfg.vocab_size
    grow_layer = kv_bytes(cfg, keys + GROW, rows) // cfg.n_layers
    return tokens * per_token + scores + logits + grow_layer


@dataclass(frozen=True)
class WorstCase:
    base: int  # bytes the process holds before serving anything
    per_request: int  # the longest allowed request's KV reservation
    max_running: int
    prefix_cache: int  # the prefix cache's byte limit
    working: int  # one forward pass at the largest batch and prompt chunk
    budget: int  # --max-memory, in bytes

    @property
    def total(self) -> int:
        return self.base + self.max_running * self.per_request + self.prefix_cache + self.working

    @property
    def kv_budget(self) -> int:
        """What the batcher may reserve for requests' KV rows: the budget minus everything else.

        Never less than one longest request: a budget too small for even that makes requests
        go one at a time (and `describe` says it is over), rather than refusing every one.
        """
        return max(self.per_request, self.budget - self.base - self.prefix_cache - self.working)

    def describe(self) -> str:
        budget = f"the --max-memory budget of {self.budget / MB:,.0f} MB"
        within = self.total <= self.budget
        verdict = f"within {budget}" if within else f"over {budget}: generations beyond it wait their turn"
        return (f"memory worst case {self.total / MB:,.0f} MB = {self.base / MB:,.0f} MB now + "
                f"{self.max_running} x {self.per_request / MB:,.0f} MB per longest request + "
                f"{self.prefix_cache / MB:,.0f} MB prefix cache + {self.working / MB:,.0f} MB working; "
                f"{verdict}")


def worst_case(cfg: ModelConfig, *, max_prompt_tokens: int, max_continuation: int, max_new_tokens: int,
               max_running: int, prefix_cache_bytes: int, chunk_tokens: int, budget_bytes: int,
               base_bytes: int | None = None) -> WorstCase:
    """The worst case of a server with these limits (a prompt, then continuation ids, then new tokens)."""
    prompt = min(cfg.max_seq_len - 1, max_prompt_tokens + max_continuation)
    longest = min(cfg.max_seq_len, prompt + max_new_tokens + GROW)
    working = max(pass_bytes(cfg, max_running, min(chunk_tokens, prompt) * 1, longest),
                  pass_bytes(cfg, max_running, max_running, longest))
    return WorstCase(resident_bytes() if base_bytes is None else base_bytes,
                     request_bytes(cfg, prompt, max_new_tokens), max_running, prefix_cache_bytes, working,
                     budget_bytes)


def base_bytes(decoder) -> int:
    """What the process holds now, plus the weight-layout copies a fused decoder is still making
    (its layout probe runs in the background after the model is ready;
    fastpath.FusedDecoder.bytes_to_come)."""
    return resident_bytes() + getattr(decoder, "bytes_to_come", lambda: 0)()


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc), or its peak so far elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux, bytes on macOS

