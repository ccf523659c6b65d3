"""Fewer glibc malloc arenas for a process that fetches pages on many threads.

glibc gives each new thread that allocates its own arena (up to 8 per core), and a pull
fetching ahead has up to 10 threads each receiving multi-megabyte bodies: every arena
keeps its own high-water mark, and a 100k-invoice pull's peak RSS grew by ~35 MB with them
(155 MB against 114 MB with two arenas; README, footnote 7). Two arenas are plenty where
the GIL lets one thread run Python at a time. Elsewhere (another libc, no ctypes) this
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2


@functools.cache
def limit_arenas() -> bool:
    """Cap glibc's arenas for threads that allocate from now on; whether it applied."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(ARENAS)))
