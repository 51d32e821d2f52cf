"""A prefix cache: the keys and values of a prompt's beginning, computed once and copied after.

Every chat prompt a classroom sends starts with the same system prompt, and a learner who
presses Generate twice sends the same prompt twice. The keys and values of a position depend
only on the tokens up to it, so the rows a previous prompt computed for a shared beginning
are the rows this prompt would compute: copying them is much cheaper than a forward pass.

Prompts are cut into blocks of BLOCK tokens. The cache remembers whole blocks only, keyed by
a chain of hashes (block j's key hashes block j's tokens together with block j-1's key), so
looking up a prompt is a walk down its own blocks; a hit is checked token by token, so two
prompts whose hashes collide can never share rows.

At least one whole block of every prompt is left to compute. One token is needed anyway (its
logits are what the next token is drawn from), and the rest keeps the logits the same bits
as without the cache: a matrix product of only a few rows takes another route through the
math library (a matrix-vector kernel) that rounds its sums differently, while products of a
block or more all take the same one. tests/test_prefix_cache.py checks the bits.

Memory is bounded: past `max_bytes`, the least recently used prefixes are forgotten.
(The idea of vLLM's automatic prefix caching and SGLang's RadixAttention, without pages.)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from prediction_machine.model.transformer import KVCache

BLOCK = 8  # tokens per cached block: small, so most of a shared beginning is reused
DEFAULT_BYTES = 64 * 2**20  # about 1,400 positions of SmolLM2-135M


@dataclass(eq=False)
class Entry:
    ids: tuple[int, ...]  # the tokens whose keys and values are held
    kv: torch.Tensor  # (L, 2, n, K, hd): keys then values of every layer
    keys: list[int] = field(default_factory=list)  # the block keys that point here

    @property
    def bytes(self) -> int:
        return self.kv.numel() * self.kv.element_size()


def block_keys(ids: list[int], n_blocks: int) -> list[int]:
    """Chained hashes of the first n_blocks blocks: key j names ids[: (j + 1) * BLOCK]."""
    keys, h = [], 0
    for j in range(n_blocks):
        h = hash((h, tuple(ids[j * BLOCK : (j + 1) * BLOCK])))
        keys.append(h)
    return keys


class PrefixCache:
    def __init__(self, max_bytes: int = DEFAULT_BYTES):
        self.max_bytes = max_bytes
        self.index: dict[int, Entry] = {}  # block key -> an entry holding that prefix
        self.entries: OrderedDict[int, Entry] = OrderedDict()  # id(entry) -> entry, least recently used first
        self.bytes = 0
        self.hits = self.reused = 0  # lookups that found something, and positions they saved
        self.lock = threading.Lock()

    def lookup(self, ids: list[int], count: bool = True) -> tuple[Entry | None, int]:
        """The longest cached prefix of ids (leaving at least a block): (entry, positions), or (None, 0)."""
        with self.lock:
            keys = block_keys(ids, (len(ids) - BLOCK) // BLOCK)
            for j in range(len(keys) - 1, -1, -1):
                e, n = self.index.get(keys[j]), (j + 1) * BLOCK
                if e is not None and list(e.ids[:n]) == ids[:n]:
                    self.entries.move_to_end(id(e))
                    if count:
                        self.hits, self.reused = self.hits + 1, self.reused + n
                    return e, n
            return None, 0

    def store(self, ids: list[int], cache: KVCache, row: int) -> None:
        """Remember the whole blocks of a prompt just read into `row` of `cache` (all but its last token)."""
        n = (len(ids) - 1) // BLOCK * BLOCK
        if n == 0:
            return
        _, m = self.lookup(ids + [0] * BLOCK, count=False)  # padded: how much of ids itself is held
        if m >= n:
            return  # already held
        kv = torch.stack(
            [torch.stack([k[row, :n], v[row, :n]]) for k, v in zip(cache.k, cache.v, strict=True)]
        )
        e = Entry(tuple(ids[:n]), kv.clone())  # (L, 2, n, K, hd), a copy that outlives the batch
        if e.bytes > self.max_bytes:
            return
        with self.lock:
            e.keys = block_keys(ids, n // BLOCK)
            for key in e.keys:
                old = self.index.get(key)
                if old is not None:
                    old.keys.remove(key)
                    if not old.keys:  # every block it held is held by the new one too
                        self._forget(old)
                self.index[key] = e
            self.entries[id(e)] = e
            self.bytes += e.bytes
            while self.bytes > self.max_bytes:
                self._forget(next(iter(self.entries.values())))

    def copy_into(self, entry: Entry, n: int, cache: KVCache, row: int) -> None:
        """Write the first n positions of entry into `row` of cache, as if the model had read them there."""
        for layer in range(entry.kv.shape[0]):
            cache.k[layer][row, :n] = entry.kv[layer, 0, :n]  # (n, K, hd)
            cache.v[layer][row, :n] = entry.kv[layer, 1, :n]
        cache.lengths[row] = n

    def _forget(self, e: Entry) -> None:
        for key in e.keys:
            if self.index.get(key) is e:
                del self.index[key]
        e.keys = []
        if self.entries.pop(id(e), None) is not None:
            self.bytes -= e.bytes
