"""WSGI apps served from one asyncio event loop (aiohttp's low-level server and its C HTTP parser).

Why not a server with a thread per request: the emulator answers thousands of small S3 requests a second from
the CRT's 25 or so connections. Behind cheroot's 48 threads, each of them runnable at once, an answer cost the
emulator 2 ms of CPU a PUT and 1.1 ms a GET (about 170 `futex` calls a request, the threads handing the
interpreter lock around) and a GET waited a median 14 ms under an export for a lock it held for well under 1 ms.
Here every request is read to its end by the loop (a body over 1 MiB, an export's 5-8 MiB part, into a temporary
file as it arrives) and the app called in the loop's thread, whose file work is page-cache reads and writes; only
requests the caller names run in a pool of threads (an SQS long poll waits up to 20 s). A part streamed to the
app in a pool thread instead, a block per hand-over, took about 95 ms under an export, against 35 ms alone: each
block's hand-over, hash and write gave up the interpreter lock and waited for the loop to hand it back.
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from aiohttp import web

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HEADER_NAMES = "loopserver.header_names"
"""The environ key under which each request header's spelling is kept, by its `HTTP_*` key: WSGI's keys lose
it (`-` and `_` both become `_`), and S3 keeps `x-amz-meta-my_key` and `x-amz-meta-my-key` apart."""
INLINE_BODY = 1 << 20
"""The largest body held in memory; a larger one (an export's 5-8 MiB parts) goes to a temporary file."""
SPOOL_BLOCK = 64 << 10
"""Bytes of a large body written to its temporary file at a time."""
POOL_THREADS = 32
"""Threads for the requests that may block. Each SQS long poll holds one for up to 20 s: the stack's pollers
keep a few waiting at once, and a pool too small would hold every other queue request behind them."""


@asynccontextmanager
async def _body(request: web.BaseRequest) -> AsyncIterator[IO[bytes]]:
    """The request's body, read to its end: in memory up to `INLINE_BODY`, else in a temporary file, written as
    it arrives (the app then reads it in the loop's thread like any other body)."""
    if (request.content_length or 0) <= INLINE_BODY and (request.content_length is not None or not request.body_exists):
        yield io.BytesIO(await request.read())
        return
    with tempfile.TemporaryFile() as spooled:
        async for block in request.content.iter_chunked(SPOOL_BLOCK):
            spooled.write(block)
        spooled.seek(0)
        yield spooled


def _environ(request: web.BaseRequest, body: IO[bytes], server: tuple[str, int]) -> dict[str, Any]:
    path, _, query = request.raw_path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
        "REMOTE_ADDR": request.remote or "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    spelled: dict[str, str] = {}
    for raw_name, raw_value in request.raw_headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
            spelled[key] = name
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    environ[HEADER_NAMES] = spelled
    return environ


def _call(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], Iterable[bytes]]:
    answer: list[Any] = []
    body = app(environ, lambda status, headers, exc_info=None: answer.extend((status, headers)))
    return answer[0], answer[1], body


@contextmanager
def serve(
    host: str, port: int, app: WSGIApp, in_pool: Callable[[dict[str, Any]], bool], name: str
) -> Iterator[tuple[str, int]]:
    """Serve `app` on a loop in a thread of its own until the block ends; yields the address it listens on.
    `in_pool(environ)` says which requests may block and are called in the pool instead of the loop."""
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix=f"{name}-pool")
    address: tuple[str, int] = (host, port)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.version >= (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
        async with _body(request) as body:
            environ = _environ(request, body, address)
            if in_pool(environ):
                status, headers, blocks = await loop.run_in_executor(pool, _call, app, environ)
            else:
                status, headers, blocks = _call(app, environ)
        code, _, reason = status.partition(" ")
        response = web.StreamResponse(status=int(code), reason=reason or None)
        for header, value in headers:
            response.headers.add(header, value)
        try:
            await response.prepare(request)
            if request.method != "HEAD":
                for block in blocks:
                    await response.write(block)
        finally:
            if close := getattr(blocks, "close", None):
                close()
        await response.write_eof()
        return response

    # bodies are stored as sent, whatever their Content-Encoding says
    server = web.Server(handle, loop=loop, access_log=None, auto_decompress=False)
    listening = loop.run_until_complete(loop.create_server(server, host, port, backlog=1024))
    address = listening.sockets[0].getsockname()[:2]
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    try:
        yield address
    finally:
        asyncio.run_coroutine_threadsafe(_stop(listening, server), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        pool.shutdown(wait=False, cancel_futures=True)


async def _stop(listening: asyncio.Server, server: web.Server) -> None:
    listening.close()
    await server.shutdown(1)
