"""Ending a download at its deadline, whatever its peer does.

Socket timeouts bound each read, not a response: a host that sends one byte every 10 ms, in its headers or
its body, never lets a read time out. So each fetch registers a `Watch` with one watchdog thread; every
connection the fetch sends a request on (through `WatchedPool`/`WatchedTLSPool`) is attached to it, and at
the deadline the watchdog shuts those sockets down, which wakes any read blocked on them at once. The fetch
then sees a short or failed read and `Watch.end()` tells it the deadline was the cause.

The fetch's own thread is found through a thread-local, because urllib3 picks (and may open) the connection
inside `urlopen`, after which it is too late to watch the response's headers.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

_current = threading.local()


class Watch:
    """One fetch's deadline and the sockets it has used so far."""

    __slots__ = ("_lock", "_sockets", "expired", "open")

    def __init__(self) -> None:
        self.expired = False
        self.open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        """Watch a socket (not its connection object: a pooled connection may reconnect for another fetch)."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self.open:
                self.expired = True
                for sock in self._sockets:
                    _shut(sock)

    def end(self) -> bool:
        """Stop watching (the connections may go back to their pool); True if the deadline had passed first,
        in which case a body that looks complete may be cut short and the connections are dead."""
        with self._lock:
            self.open = False
            self._sockets.clear()
            return self.expired


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain call: the TLS state belongs to the reader


class _Watchdog:
    """One daemon thread for every fetch of the process, sleeping until the earliest deadline.

    Most fetches end long before their deadline; their entries are dropped when they reach the top of the
    heap, and the heap is compacted whenever it doubles, so a busy worker keeps only its live fetches."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._compact_at = 1024
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float) -> Watch:
        watch = Watch()
        with self._condition:
            if len(self._heap) >= self._compact_at:
                self._heap = [entry for entry in self._heap if entry[2].open]
                heapq.heapify(self._heap)
                self._compact_at = max(1024, 2 * len(self._heap))
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="download-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is watch:
                self._condition.notify()
        return watch

    def _run(self) -> None:
        with self._condition:
            while True:
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, _, watch = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0 and watch.open:
                    self._condition.wait(left)
                    continue
                heapq.heappop(self._heap)
                watch.expire()


_watchdog = _Watchdog()


@contextmanager
def watching(deadline: float) -> Iterator[Watch]:
    """Requests this thread sends inside the block end by `deadline` (a `time.monotonic()` value)."""
    watch = _watchdog.watch(deadline)
    _current.watch = watch
    try:
        yield watch
    finally:
        _current.watch = None
        watch.end()


class _Watched(HTTPConnection):
    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override]
        watch: Watch | None = getattr(_current, "watch", None)
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)
        return super().getresponse()


class _WatchedTLS(_Watched, HTTPSConnection):
    pass


class WatchedPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Watched


class WatchedTLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedTLS
