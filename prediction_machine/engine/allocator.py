"""Keep freed memory for the next step: the C allocator setting that decoding many rows needs.

Every decode step for a class makes a few tensors the size of the vocabulary for every row:
the logits, the probabilities, their logs, each (32, 49152) floats, 6.3 MB. The C library's
allocator (glibc malloc) hands a block that large straight from the operating system and
gives it back when it is freed, so the next step's block is fresh memory again: the kernel
zeroes every page of it on first touch, and at 32 rows that zeroing was about half of a sampling
step (the figures, with their machine and date, are in docs/performance.md;
bench/bench_classroom.py applies the same setting to both sides it compares).

`keep_freed_memory()` raises the two thresholds (mallopt, the same as the MALLOC_MMAP_THRESHOLD_
and MALLOC_TRIM_THRESHOLD_ environment variables): blocks up to 32 MB come from the heap, and
freed memory is kept for reuse up to 512 MB. The cost is that memory freed after a burst is
not given back to the system at once; the server's peak (which the memory budget counts) is
unchanged. On a C library without mallopt (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts: blocks below it are reused, not remapped
TRIM_THRESHOLD = 512 * 2**20  # free memory kept at the top of the heap before any goes back

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Ask the C allocator to keep and reuse freed blocks up to 32 MB. True if it took effect."""
    global _done
    if _done is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
        except (OSError, AttributeError):
            _done = False
    return _done
