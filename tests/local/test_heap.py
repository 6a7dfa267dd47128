"""glibc's malloc, tuned for the local stack: a large block freed goes back to the kernel whatever was freed
before it, the trim hands pages freed below live memory back, and the thread that trims on a clock ends with its
block."""

from __future__ import annotations

import platform
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pixcrawler_local import heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


AFTER_A_LARGER_BLOCK = """
import sys
from pathlib import Path
from pixcrawler_local import heap

def rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])

heap.tune()
freed = bytearray(16 << 20)
del freed
part = bytearray(8 << 20)
live = [bytearray(100) for _ in range(1000)]
held = rss_kib()
del part
print(held - rss_kib())
"""


def test_a_large_block_goes_back_to_the_kernel_after_a_larger_one_was_freed() -> None:
    """In a fresh interpreter (the thresholds are per process): glibc's own threshold would have risen to 16 MiB
    with the first block, and the 8 MiB part, from the heap below live blocks, would have stayed resident."""
    given_back = subprocess.run(
        [sys.executable, "-c", AFTER_A_LARGER_BLOCK], capture_output=True, text=True, check=True
    ).stdout
    assert int(given_back) >= 8000, f"only {given_back.strip()} KiB of the 8 MiB part went back"


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
