"""The process's download threads, shared by every chunk it runs at once.

An invocation may run the chunks of its batch overlapped (the next one starts while the one before it waits
for its last downloads and commits). They share one count of free threads, so the scheduler's promise
holds across chunks: a request is handed to a thread only when a thread is free, and starts at once, so
admitted requests never queue up behind another chunk's and reach a host in a burst.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Threads:
    def __init__(self, size: int) -> None:
        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="download")
        self._free = size
        self._generation = 0
        self._changed = threading.Condition()

    @property
    def free(self) -> int:
        return self._free

    @property
    def generation(self) -> int:
        """Moves on each time a task ends: read it before looking at tasks, then `wait` for it to move."""
        return self._generation

    def submit(self, task: Callable[..., Any], *args: Any) -> Future[Any] | None:
        """Start `task` on a free thread, or return None when every thread is busy."""
        with self._changed:
            if self._free == 0:
                return None
            self._free -= 1
        future = self._pool.submit(task, *args)
        future.add_done_callback(self._ended)
        return future

    def wait(self, generation: int, timeout: float | None) -> None:
        """Return when a task has ended since `generation` was read, or after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation, timeout)

    def _ended(self, _: Future[Any]) -> None:
        with self._changed:
            self._free += 1
            self._generation += 1
            self._changed.notify_all()
