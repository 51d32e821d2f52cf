"""A small cache for expensive results that belong to one object (a model, its embedding table).

    memo = Memo(size=4)
    axes = memo.get(table, None, lambda: principal_axes(table))

Entries are keyed by the object's identity and a hashable key. The cache keeps only a weak
reference to the object: it never keeps an unloaded model alive, and a new object that
happens to get the same address never sees the old one's entries. At most `size` entries
are kept; the least recently used goes first.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class Memo:
    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()  # routes run in a thread pool
        self._items: OrderedDict[tuple, tuple[weakref.ref, Any]] = OrderedDict()

    def get(self, owner: object, key: Hashable, compute: Callable[[], Any]) -> Any:
        k = (id(owner), key)
        with self._lock:
            hit = self._items.get(k)
            if hit is not None and hit[0]() is owner:
                self._items.move_to_end(k)
                return hit[1]
        value = compute()  # outside the lock: two different sentences can be computed at once
        with self._lock:
            self._items[k] = (weakref.ref(owner), value)
            self._items.move_to_end(k)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def keys(self) -> list[Hashable]:
        """The keys held now (without the owners' identities)."""
        with self._lock:
            return [key for _, key in self._items]

    def forget(self, where: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key `where` picks (say, a file that is gone). Returns how many."""
        with self._lock:
            gone = [k for k in self._items if where(k[1])]
            for k in gone:
                del self._items[k]
        return len(gone)

    def __len__(self) -> int:
        return len(self._items)
