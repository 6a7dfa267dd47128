"""glibc's malloc, tuned for the local stack: the trim hands pages freed below live memory back to the kernel,
and the thread that trims on a clock ends with its block."""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import pytest

from pixcrawler_local import heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def test_the_trim_gives_back_what_was_freed_below_live_memory() -> None:
    """Every other 64 KiB body freed (32 MiB in holes between live ones, below the mmap threshold, so inside
    malloc's heap): glibc keeps the holes resident until the trim returns them."""
    bodies = [bytearray(64 << 10) for _ in range(1024)]  # bytearray writes its zeros: the pages are resident
    del bodies[::2]
    held = rss_kib()
    heap.give_back()
    assert held - rss_kib() > 24 << 10, "less than 24 MiB of the 32 MiB freed went back"
    assert len(bodies) == 512


def test_the_trimming_thread_ends_with_its_block() -> None:
    with heap.kept_trimmed(every=0.01):
        assert any(thread.name == "malloc-trim" for thread in threading.enumerate())
    assert not any(thread.name == "malloc-trim" for thread in threading.enumerate())
