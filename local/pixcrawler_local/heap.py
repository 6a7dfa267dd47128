"""glibc's malloc, tuned for the local stack's long-lived processes (the `pixcrawler` process and the S3/SQS
emulator's); never for Lambda, where an environment's memory is its own and ends with it. Where malloc is not
glibc's (macOS, musl) all of it is a no-op.

The process's own symbols hold libc's (no `find_library`, which runs `ldconfig` in a subprocess at every start).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

M_ARENA_MAX = -8  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20


def _libc(name: str) -> Callable[..., int] | None:
    function: Callable[..., int] | None = getattr(ctypes.CDLL(None), name, None)
    return function


_malloc_trim = _libc("malloc_trim")


def tune(arenas: int = 2, mmap_threshold: int = MMAP_THRESHOLD) -> None:
    """Set glibc's malloc for a long-lived process before the stack starts its threads; child processes (the
    S3/SQS emulator) read the same settings from the environment when they start.

    Few arenas: glibc gives threads that allocate at once their own arenas (up to eight per core) and hands
    little of their freed memory back, so the stack's dozens of threads (downloads, decodes, the emulator's
    pool, pollers) kept growing with the images they had handled: a 5,000-image `crawl` peaked at 358 MiB in
    its process, 246 MiB with two arenas, as fast.

    A fixed mmap threshold: a block of 1 MiB or more gets pages of its own, given back to the kernel when freed.
    glibc's default threshold rises to the largest block freed (up to 32 MiB), so after the first 8 MiB export
    part every later one came from the heap, and the heap's high-water mark swung with the parts in flight;
    an export of 2,000 photos peaked 13 MiB higher in the `pixcrawler` process and 14 MiB in the emulator.
    """
    os.environ.setdefault("MALLOC_ARENA_MAX", str(arenas))
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(mmap_threshold))
    if mallopt := _libc("mallopt"):
        mallopt(M_ARENA_MAX, arenas)
        mallopt(M_MMAP_THRESHOLD, mmap_threshold)


def give_back() -> None:
    """Return the free pages inside malloc's heaps to the kernel (`malloc_trim(0)`). By itself glibc gives back
    only what is free at the top of a heap, so the pages a batch freed below live chunks stayed resident and
    the process grew with the job, not with what it held (its Python heap does not grow, per `tracemalloc`)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


TRIM_EVERY = 1.0
"""A trim costs 1.5-3.5 ms on average here (tens of ms at most, while a 20,000-photo export frees its buffers)."""


@contextmanager
def kept_trimmed(every: float = TRIM_EVERY) -> Iterator[None]:
    """`give_back()` every `every` seconds while the block runs, from a thread of its own: on a clock rather
    than after each invocation, because an export is one invocation as long as the job (78 s at 20,000
    photos) and frees as it goes."""
    if _malloc_trim is None:
        yield
        return
    stop = threading.Event()

    def trim() -> None:
        while not stop.wait(every):
            give_back()

    thread = threading.Thread(target=trim, name="malloc-trim", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
