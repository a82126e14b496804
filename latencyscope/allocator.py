"""How the allocators treat freed memory: the recorder keeps it, the analyzer returns it.

Recorder (``keep_freed_memory``): keep freed memory mapped instead of handing it back.

Every flush builds temporaries (dictionaries, compressed buffers) of
similar sizes.  By default glibc's malloc returns big blocks to the kernel
when they are freed and pyarrow's mimalloc purges freed pages, so the next
flush faults the same amount of fresh memory in again, and the kernel
zeroes every page of it.  On the benchmark VM that zeroing
(``clear_page_erms`` under page faults) was a fifth of the recorder's CPU
while recording: CPU taken from the workload being watched.  Arrow then
uses glibc malloc, which keeps what it freed (mimalloc still faulted fresh
huge pages with its purge delay off: recorder system time 0.08-0.15 s vs
0.02-0.03 s per 3 s of ``stress-ng --switch 2``).  Keeping the memory costs
at most one flush's temporaries of resident memory.  The big buffers (slot
buffers, column buffers) are allocated once and faulted in before tracing
starts (record/writer.py ``prefault``).

Analyzer (``return_freed_memory``): its peak RSS is what a laptop has to
hold.  Each slice of a large capture frees its temporaries and the next
slice allocates similar ones, but from other threads' jemalloc arenas
(Polars) and Arrow's mimalloc, which each keep what they freed for seconds:
together +80 MiB on a 2.7 M-event capture.  Arrow then uses glibc malloc
(big blocks unmapped when freed) and Polars' jemalloc purges at once
(250 ms until the tenth round); measured at the same speed
(docs/benchmarks.md, seventh and tenth rounds).

The analyzer's numpy temporaries (a slice's events are sorted, grouped
and counted through arrays of a few MiB each) are on glibc malloc too:
left to its defaults, every thread got its own arena and the threshold
for mapping blocks moved with what was freed, so a slice's arrays were
mostly fresh pages again, faulted in and zeroed (88 k minor faults for a
2.7 M-event capture).  One arena for every thread, blocks of 8 MiB and
more mapped, and the heap trimmed only past 64 MiB free: what one slice
frees the next reuses (45 k faults), at a peak RSS within a few MiB.

Both must run before pyarrow and polars are imported (the allocators read
their options when they load); the CLIs call them first thing.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_MAX = 32 << 20   # glibc's ceiling on 64-bit
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> None:
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):  # not glibc: its defaults stay
        pass


# Polars' jemalloc hands freed pages back at once: a ~1 M-event analysis
# lasts under a second, so a decay delay kept a slice's temporaries resident
# for the whole run (peak RSS 192 -> 185 MiB, same wall time; 100 M events:
# same 2.6 GiB peak, 21.1 s vs 22.3 s; docs/benchmarks.md, tenth round).
POLARS_JEMALLOC_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0"
ANALYZER_MMAP_THRESHOLD = 8 << 20
ANALYZER_TRIM_THRESHOLD = 64 << 20


def return_freed_memory() -> None:
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_JEMALLOC_CONF)
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_ARENA_MAX, 1)   # before any other thread allocates
        libc.mallopt(M_MMAP_THRESHOLD, ANALYZER_MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, ANALYZER_TRIM_THRESHOLD)
    except (OSError, AttributeError):  # not glibc: its defaults stay
        pass
