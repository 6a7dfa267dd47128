"""The whole product on one machine: the deployed handlers wired to local stand-ins for AWS.

PostgreSQL (embedded, or `DATABASE_URL`), S3 on disk and moto's server for SQS at one endpoint, an HTTP server
playing API Gateway in front of the API function, and one SQS poller per worker queue playing Lambda's event
source mapping. Everything a restart must keep lives in the data dir: the database files, every object and
queued message (written through before the emulator answers, see s3disk.py and store.py), and the secrets that
sign tokens and links.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pixcrawler import aws
from pixcrawler.exports.multipart import MIN_PART_SIZE, MiB
from pixcrawler.settings import DEFAULT_MAX_RECEIVE_COUNT, get_settings
from pixcrawler_local import database, emulator, heap, registry
from pixcrawler_local.emulator import WORK_QUEUES
from pixcrawler_local.files import write_atomically
from pixcrawler_local.functions import Function, repository_root
from pixcrawler_local.gateway import Gateway, serve
from pixcrawler_local.pollers import EventSource, Poller
from pixcrawler_local.ports import PortInUse, check_port

if TYPE_CHECKING:
    from pgserver import PostgresServer

log = logging.getLogger(f"local-stack.{__name__.rpartition('.')[2]}")

BUCKET = "pixcrawler-local"
REGION = "us-east-1"
STATE_FILE = "stack.json"
LOOPBACK_UNLIMITED = json.dumps(
    {host: {"rate": None, "concurrency": None} for host in ("127.0.0.1", "::1", "localhost")}
)
"""`CRAWL_HOST_OVERRIDES` lifting the host budget of this machine's own addresses (`--allow-loopback` crawls)."""
LOCAL_POOL_RECYCLE_SECONDS = 30
"""`DB_POOL_RECYCLE_SECONDS` here: the stack's process keeps its connections for a whole run, and a PostgreSQL
backend keeps the pages it once needed (one reached 7-10 MiB of private memory in a 20,000-photo run, against
2-3 MiB at 2,000); a new backend every 30 s costs a connection on a unix socket. Same run, 20,000 photos:
PostgreSQL's peak 41 -> 36 MiB, the stack's PSS sum 291 -> 283 MiB, no slower."""
LOCAL_EXPORT_PART_SIZE_MB = MIN_PART_SIZE // MiB
"""`EXPORT_PART_SIZE_MB` here unless the user sets it: S3's smallest part, against 8 MiB elsewhere. The stack's
process runs every function at once, and through an export its memory saws by a part's size as each part fills
and goes up (150-159 MiB with 8 MiB parts). 2,000 photos, alternating 8 / 5 / 8 / 5 MiB: the stack's process
peaked at 155.4 / 151.0 / 156.1 / 150.8 MiB, the PSS sum at 262.3 / 258.1 / 262.7 / 257.0, the export took
7.0 / 6.3 / 6.0 / 6.2 s."""


@dataclass
class StackOptions:
    data_dir: Path
    repo: Path | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    aws_port: int = 0
    database_url: str = ""
    visibility_timeout: int = 60
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT
    concurrency: int = 1
    sweep_interval: float = 300.0  # template.yaml: rate(5 minutes)
    stop_timeout: float = 60.0
    allow_loopback: bool = False
    announce: bool = False  # listed among the user's running stacks (serve), so `pixcrawler token` finds it


class DataDirBusy(RuntimeError):
    """Two stacks on one data dir would run two emulators writing one object copy."""


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold the data dir for this process (released when the returned file closes, or the process ends)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirBusy(
            f"{data_dir} is in use by another pixcrawler process (serve, crawl or demo); stop it or choose "
            "another --data-dir."
        ) from None
    return handle


def read_secrets(data_dir: Path) -> dict[str, str] | None:
    """The data dir's secrets, or None if no stack has made them there yet."""
    path = data_dir / "secrets.json"
    if not path.is_file():
        return None
    stored: dict[str, str] = json.loads(path.read_text())
    return stored


def load_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets made once per data dir, so tokens and download links stay valid across restarts."""
    if (stored := read_secrets(data_dir)) is not None:
        return stored
    path = data_dir / "secrets.json"
    made = {"token_secret": secrets.token_urlsafe(32), "download_link_secret": secrets.token_urlsafe(32)}
    write_atomically(path, json.dumps(made), mode=0o600)
    return made


def scheduled_event(function_name: str) -> dict[str, Any]:
    """The event EventBridge sends a function on a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:000000000000:rule/{function_name}-schedule"],
        "detail": {},
    }


def _reset_layer_caches() -> None:
    """The layer caches settings, engine, clients and the link secret; the stack just changed all of them."""
    from pixcrawler import aws, db, links

    get_settings.cache_clear()
    db.reset()
    aws.reset()
    links._secret.cache_clear()


def _stop_database(started: Future[tuple[PostgresServer | None, str]]) -> None:
    """Stop the embedded PostgreSQL if it started, also when the stack failed to start while it booted."""
    if not started.cancelled() and started.exception() is None and (server := started.result()[0]) is not None:
        server.cleanup()


class LocalStack:
    """`with LocalStack(options) as stack:` — everything runs until the block ends; `stack.api_url` serves it."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.repo = repository_root(options.repo)
        self.secrets: dict[str, str] = {}
        self.api_url = ""
        self.aws_endpoint = ""
        self.queues: dict[str, dict[str, str]] = {}
        self.pollers: dict[str, Poller] = {}
        self._exit = ExitStack()
        self._stopping = threading.Event()

    def __enter__(self) -> LocalStack:
        """A stack that fails to start leaves no new data dir behind, and a taken port touches no existing one."""
        options, created = self.options, not self.data_dir.exists()
        check_port(options.host, options.port, "API", "--port")
        check_port(options.host, options.aws_port, "S3/SQS emulator", "--aws-port")
        try:
            self._exit.enter_context(lock_data_dir(self.data_dir))
            self.secrets = load_secrets(self.data_dir)
            self._start()
        except BaseException:
            self._exit.close()
            if created:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        options = self.options
        self._exit.enter_context(heap.kept_trimmed())
        # One API environment: the resolver is a module-level object in the layer, shared by every copy of
        # the function module in this process, and it keeps the current event on itself.
        self.api_function = api_function = Function.from_repository(self.repo, "api", concurrency=1)
        http = serve(Gateway(api_function.invoke, self.secrets["token_secret"]), options.host, options.port)
        self._exit.callback(http.server_close)
        self.api_url = f"http://{options.host}:{http.server_port}"

        # PostgreSQL and the emulator start in processes of their own while this one loads the functions; a
        # function's import needs its settings (logger, tracer), not yet the services' addresses.
        with ThreadPoolExecutor(max_workers=1) as pool:
            database_ready = pool.submit(self._database)
            self._exit.callback(_stop_database, database_ready)
            self.emulator = self._exit.enter_context(
                emulator.aws_process(options.host, options.aws_port, self.data_dir, REGION)
            )
            self._configure()
            workers = {
                queue: Function.from_repository(
                    self.repo, queue.function, concurrency=options.concurrency, timeout_seconds=queue.timeout_seconds
                )
                for queue in WORK_QUEUES
            }
            sweep = Function.from_repository(self.repo, "sweep", timeout_seconds=60)
            for function in (api_function, sweep, *workers.values()):
                function.warm()
            aws.load_models()
            self.aws_endpoint = self.emulator.url
            database_url = database_ready.result()[1]
        os.environ.update({"DATABASE_URL": database_url, "AWS_ENDPOINT_URL": self.aws_endpoint})
        _reset_layer_caches()
        aws.s3().create_bucket(Bucket=BUCKET)
        self.queues = emulator.create_queues(
            aws.sqs(), "pixcrawler", options.visibility_timeout, options.max_receive_count
        )
        for queue in WORK_QUEUES:
            os.environ[queue.variable] = self.queues[queue.name]["url"]
        _reset_layer_caches()
        # A setting the environment gets wrong (say CRAWL_HOST_OVERRIDES) stops the start here, named, instead
        # of answering the first request 500.
        get_settings()

        objects, messages = self.emulator.restore()
        if objects or messages:
            log.info("restored %d stored objects and %d queued messages", objects, messages)
        if moved := emulator.import_legacy_state(aws.s3(), aws.sqs(), BUCKET, self.queues, self.data_dir):
            log.info("moved %d objects and messages of an older data dir into the store", moved)
        for queue, function in workers.items():
            source = EventSource(
                queue_url=self.queues[queue.name]["url"],
                queue_arn=self.queues[queue.name]["arn"],
                invoke=function.invoke,
                batch_size=queue.batch_size,
                concurrency=options.concurrency,
                region=REGION,
            )
            self.pollers[queue.name] = Poller(aws.sqs(), source, function.name)
            self.pollers[queue.name].start()
        self._exit.callback(self._stop_pollers)
        if options.sweep_interval > 0:
            self._background(lambda: self._schedule(sweep, options.sweep_interval), "sweep")

        # `shutdown()` waits for the loop to look up: every 0.5 s by default, half a second of every stop.
        thread = threading.Thread(
            target=http.serve_forever, kwargs={"poll_interval": 0.05}, name="gateway", daemon=True
        )
        thread.start()
        self._exit.callback(http.shutdown)
        self._write_state()

    def _database(self) -> tuple[PostgresServer | None, str]:
        """The embedded server (unless DATABASE_URL is given) and its URL, migrated to the newest revision. A new
        data dir's database is a copy of the template these migrations made, so it is there already, and the
        stack skips Alembic's 0.3-0.5 s of finding nothing to do (it starts while the functions load)."""
        server, url = None, self.options.database_url
        if not url:
            directory = self.data_dir / "postgres"
            new = not database.exists(directory)
            server, url = database.start_embedded(directory, self.repo)
            if new:
                log.info("database made from the migrations' template, at the newest revision")
                return server, url
        log.info("database at revision %s", database.migrate(self.repo, url))
        return server, url

    def _stop_pollers(self) -> None:
        """Every poller finishes its batch in progress; they wind down together, not one after another."""
        for poller in self.pollers.values():
            poller.request_stop()
        for poller in self.pollers.values():
            poller.join(self.options.stop_timeout)
            poller.release_failed()

    def _configure(self) -> None:
        """The environment the deployed template gives every function, pointed at the local API; the emulator's
        address (`AWS_ENDPOINT_URL`) follows once it listens."""
        options = self.options
        os.environ.update(
            {
                "DB_POOL_SIZE": str(4 + 8 * options.concurrency),  # one engine serves every function here
                "DB_POOL_RECYCLE_SECONDS": str(LOCAL_POOL_RECYCLE_SECONDS),
                "DATA_BUCKET": BUCKET,
                "PUBLIC_API_URL": self.api_url,
                "DOWNLOAD_LINK_SECRET": self.secrets["download_link_secret"],
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_SERVICE_NAME": "pixcrawler",
                "POWERTOOLS_METRICS_NAMESPACE": "PixCrawlerLocal",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
                # the workers fail a job readably on the last delivery, so they must know the queues' limit
                "MAX_RECEIVE_COUNT": str(options.max_receive_count),
            }
        )
        os.environ.setdefault("EXPORT_PART_SIZE_MB", str(LOCAL_EXPORT_PART_SIZE_MB))
        if options.allow_loopback:  # otherwise the user's own CRAWL_ALLOW_LOOPBACK decides
            os.environ["CRAWL_ALLOW_LOOPBACK"] = "true"
            # this machine's own hosts are the user's: no host budget, unless the user set one
            os.environ.setdefault("CRAWL_HOST_OVERRIDES", LOOPBACK_UNLIMITED)
        for variable in (
            "DB_SECRET_ARN",
            "DOWNLOAD_LINK_SECRET_ARN",
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
        ):
            os.environ.pop(variable, None)
        _reset_layer_caches()

    def _background(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._exit.callback(thread.join)
        self._exit.callback(self._stopping.set)

    def _schedule(self, function: Function, interval: float) -> None:
        """EventBridge's `rate(...)` schedule: the function gets a scheduled event every `interval` seconds."""
        while not self._stopping.wait(interval):
            try:
                function.invoke(scheduled_event(function.name))
            except Exception:
                log.exception("scheduled %s failed; next run in %.0f s", function.name, interval)

    def _write_state(self) -> None:
        """Where everything listens, for tools and tests that drive a running `serve`."""
        state = {
            "pid": os.getpid(),
            "api_url": self.api_url,
            "aws_endpoint_url": self.aws_endpoint,
            "emulator_pid": self.emulator.pid,
            "bucket": BUCKET,
            "region": REGION,
            "queues": self.queues,
        }
        path = self.data_dir / STATE_FILE
        write_atomically(path, json.dumps(state, indent=2))
        self._exit.callback(path.unlink, missing_ok=True)
        if self.options.announce:
            entry = registry.announce(registry.RunningStack(os.getpid(), self.data_dir, self.api_url))
            self._exit.callback(entry.unlink, missing_ok=True)

    def token(self, email: str) -> str:
        from pixcrawler_local import tokens

        return tokens.mint(self.secrets["token_secret"], email)


__all__ = ["DataDirBusy", "LocalStack", "PortInUse", "StackOptions"]
