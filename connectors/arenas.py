"""Fewer glibc malloc arenas for a process that fetches pages on many threads.

glibc gives each new thread that allocates its own arena (up to 8 per core), and a pull
fetching ahead has up to 10 threads each receiving multi-megabyte bodies: every arena
keeps its own high-water mark, and a 100k-invoice pull's peak RSS grew by ~35 MB with them
(155 MB against 114 MB with two arenas; README, Benchmarks footnote 4). Two arenas are plenty where
the GIL lets one thread run Python at a time.

Bodies are also given back to the system as soon as they are freed: glibc serves a block
above its mmap threshold (128 KB at first) from its own mapping, but each such block freed
raises the threshold to its size, so after the first few pages every 2-3 MB body came from
the heap, whose freed space fragments rather than shrinks. A fixed threshold of 1 MiB
(which also ends that adjustment) took a 100k pull's peak RSS from 117-130 MB to 104-106 MB,
and 10k's from 104 to 98 MB. Elsewhere (another libc, no ctypes) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_ARENA_MAX = -8  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # bytes: larger blocks get their own mapping, unmapped when freed


@functools.cache
def limit_arenas() -> bool:
    """Cap glibc's arenas for threads that allocate from now on, and fix its mmap threshold;
    whether it applied."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mapped = mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(MMAP_THRESHOLD))
    return bool(mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(ARENAS))) and bool(mapped)
