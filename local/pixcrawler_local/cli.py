"""The `pixcrawler` command: the product on one machine (demo, serve, crawl, token, migrate)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from contextlib import ExitStack
from enum import StrEnum
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pixcrawler.schemas import ExportFormat, ExportLayout, Provider
from pixcrawler.schemas.export import EncodeFormat, ResizeMode
from pixcrawler.settings import DEFAULT_MAX_RECEIVE_COUNT, Settings, SettingsError
from pixcrawler_local import heap

if TYPE_CHECKING:
    from collections.abc import Callable

    from pixcrawler_local.client import Client
    from pixcrawler_local.pipeline import DatasetRequest, Outcome
    from pixcrawler_local.stack import StackOptions

DEFAULT_DATA_DIR = ".pixcrawler"
DEFAULT_HOST = "127.0.0.1"


class UsageError(Exception):
    """Input the command cannot use: one sentence on stderr and exit code 2, as argparse answers a bad option."""


def _values(choices: type[StrEnum]) -> list[str]:
    """An option's choices are the API's own enum values, so the CLI accepts exactly what a request may name."""
    return [member.value for member in choices]


def _splits(value: str) -> dict[str, float]:
    """`--splits train=0.8,validation=0.1,test=0.1`, checked by the API's own rules so a bad value is refused
    before the stack starts, in one sentence."""
    from pydantic import ValidationError

    from pixcrawler.schemas.export import ExportOptions

    fractions: dict[str, float] = {}
    for item in value.split(","):
        name, _, fraction = (part.strip() for part in item.partition("="))
        if name in fractions:
            raise argparse.ArgumentTypeError(f"split {name!r} is named twice")
        try:
            fractions[name] = float(fraction)
        except ValueError:
            message = f"{item.strip()!r} is not NAME=FRACTION, as in train=0.8,test=0.2"
            raise argparse.ArgumentTypeError(message) from None
    try:
        ExportOptions(splits=fractions)
    except ValidationError as error:
        raise argparse.ArgumentTypeError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None
    return fractions


def _data_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("PIXCRAWLER_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def _logging(verbose: bool, server: bool) -> None:
    level = logging.INFO if verbose or server else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose or server else "ERROR")


def _stop_on_signals() -> None:
    """`kill` and Ctrl-C stop the stack cleanly (objects saved, database stopped), even when started with `&`
    from a script, which leaves SIGINT ignored."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _repo(args: argparse.Namespace) -> str | None:
    """`--repo`, else `PIXCRAWLER_REPO`: read here rather than as the option's default, so that `crawl --api`
    refuses the flag a user typed and not a variable their shell happens to hold."""
    return args.repo or os.environ.get("PIXCRAWLER_REPO")


def _options(args: argparse.Namespace, data_dir: Path, port: int | None, **overrides: Any) -> StackOptions:
    from pixcrawler_local.stack import StackOptions

    repo = _repo(args)
    return StackOptions(
        data_dir=data_dir,
        repo=Path(repo) if repo else None,
        host=args.host or DEFAULT_HOST,
        port=port or 0,
        aws_port=args.aws_port or 0,
        database_url=os.environ.get("DATABASE_URL", ""),
        **overrides,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from pixcrawler_local.stack import LocalStack

    options = _options(
        args,
        _data_dir(args.data_dir),
        args.port,
        visibility_timeout=args.visibility_timeout,
        max_receive_count=args.max_receive_count,
        sweep_interval=args.sweep_interval,
        concurrency=args.concurrency,
        allow_loopback=args.allow_loopback,
        announce=True,
    )
    with LocalStack(options) as stack:
        print(f"PixCrawler API on {stack.api_url}  (docs: {stack.api_url}/v1/docs)", flush=True)
        # the token rides in the fragment, which browsers never send: it stays out of every server log
        print(f"dataset browser, signed in as {args.email} for 24 h:", flush=True)
        print(f"  {stack.api_url}/v1/app#token={stack.token(args.email)}", flush=True)
        print(f"data dir {stack.data_dir}; S3/SQS emulator on {stack.aws_endpoint}", flush=True)
        print(f"get a token: pixcrawler token --data-dir {stack.data_dir} --email you@example.com", flush=True)
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()
    return 0


def _token_data_dir(args: argparse.Namespace) -> Path:
    """The data dir named (`--data-dir`, `PIXCRAWLER_DATA_DIR`), else the one `serve` running now; never a guess."""
    from pixcrawler_local import registry

    if args.data_dir or os.environ.get("PIXCRAWLER_DATA_DIR"):
        return _data_dir(args.data_dir)
    stacks = registry.running()
    if not stacks:
        raise UsageError(
            "no `pixcrawler serve` is running; start one first, or pass --data-dir DIR of the stack the token is for."
        )
    if len(stacks) > 1:
        running = ", ".join(f"{stack.data_dir} ({stack.api_url})" for stack in stacks)
        raise UsageError(f"{len(stacks)} stacks are running ({running}); pass --data-dir to say which one.")
    return stacks[0].data_dir


def cmd_token(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from pixcrawler_local import tokens
    from pixcrawler_local.stack import read_secrets

    data_dir = _token_data_dir(args)
    secrets = read_secrets(data_dir)
    if secrets is None:
        raise UsageError(
            f"{data_dir} holds no secrets (no stack has run there), so no API would accept a token; start "
            f"`pixcrawler serve --data-dir {data_dir}` first, or pass the --data-dir of a running stack."
        )
    print(tokens.mint(secrets["token_secret"], args.email, timedelta(hours=args.hours)))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from pixcrawler_local import database
    from pixcrawler_local.functions import repository_root

    repo = repository_root(_repo(args))
    with ExitStack() as stack:
        url = os.environ.get("DATABASE_URL", "")
        if not url:
            server, url = database.start_embedded(_data_dir(args.data_dir).resolve() / "postgres", repo)
            stack.callback(server.cleanup)
        print(f"database at revision {database.migrate(repo, url)}")
    return 0


def _drive(args: argparse.Namespace, client: Client, request: DatasetRequest, then: str) -> Outcome:
    """Run one dataset through an API, local or deployed, with Ctrl-C cancelling the crawl job; `then` says
    what follows the cancel."""
    from pixcrawler_local.pipeline import Pipeline

    pipeline = Pipeline(client, progress=not args.quiet, timeout=args.timeout)
    try:
        return pipeline.run(request)
    except KeyboardInterrupt:
        print(f"\ninterrupted: cancelling the crawl and {then}...", file=sys.stderr, flush=True)
        try:
            pipeline.cancel()
        except Exception as error:  # we are stopping anyway; say why the cancel did not land
            print(f"could not cancel the crawl job: {error}", file=sys.stderr)
        raise


def _run_pipeline(
    args: argparse.Namespace, options: StackOptions, build: Callable[[ExitStack], DatasetRequest]
) -> Outcome:
    """Start the stack, run one dataset through it (with Ctrl-C cancelling the crawl), return the outcome."""
    from pixcrawler_local.client import Client
    from pixcrawler_local.stack import LocalStack

    with ExitStack() as resources, LocalStack(options) as stack:
        request = build(resources)
        client = Client(stack.api_url, stack.token("you@pixcrawler_local"))
        return _drive(args, client, request, "stopping (state is kept)")


DEMO_TIMEOUT = 180.0
"""The demo is offline and small: a stage that takes this long has failed."""


def cmd_demo(args: argparse.Namespace) -> int:
    from pixcrawler_local import demo

    if args.timeout is None:
        args.timeout = DEMO_TIMEOUT
    fresh = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="pixcrawler-demo-")) if fresh else _data_dir(args.data_dir)
    output = Path(args.output) if args.output else data_dir / "pixcrawler-demo.zip"
    throwaway = fresh and not args.keep
    options = _options(args, data_dir, args.port, allow_loopback=True)
    sample_urls: list[str] = []

    def build(resources: ExitStack) -> DatasetRequest:
        sample_set = demo.start_host(resources)
        sample_urls.extend(sample_set.urls)
        return demo.request(sample_set, output.resolve())

    from pixcrawler_local import emulator

    try:
        outcome = _run_pipeline(args, options, build)
    finally:
        if throwaway:  # the archive stays; the database, objects, messages and secrets go
            for stored in ("postgres", emulator.OBJECTS_DIR, emulator.MESSAGES_DIR):
                shutil.rmtree(data_dir / stored, ignore_errors=True)
            for leftover in ("secrets.json", ".lock"):
                (data_dir / leftover).unlink(missing_ok=True)
            if not any(data_dir.iterdir()):
                data_dir.rmdir()
    print(demo.summary(outcome, len(sample_urls)))
    return 0


def _read_urls(path: str) -> list[str]:
    """The URLs of a `--urls-file`, one a line; a file that cannot be read or holds none is refused by name."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--urls-file {path} does not exist.") from None
    except OSError as error:
        raise UsageError(f"cannot read --urls-file {path} ({error.strerror or error}).") from None
    except UnicodeDecodeError:
        raise UsageError(f"--urls-file {path} is not a text file; put one image URL on each line.") from None
    urls = [line.strip() for line in text.splitlines() if line.strip()]
    if not urls:
        raise UsageError(f"--urls-file {path} holds no URLs; put one image URL on each line.")
    return urls


def _on_loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a malformed URL is the crawler's to refuse
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_about_loopback(urls: list[str], why: str | None) -> None:
    """A crawler refuses loopback hosts (SSRF protection), and a deployed one could not reach this machine
    anyway; a user crawling their own machine hears `why` up front (None: the crawler may fetch them)."""
    local = [url for url in urls if _on_loopback(url)]
    if local and why:
        print(
            f"pixcrawler crawl: {len(local)} of the {len(urls)} URLs are on this machine "
            f"({urlsplit(local[0]).netloc}), {why}.",
            file=sys.stderr,
            flush=True,
        )


def _transform_options(args: argparse.Namespace) -> dict[str, Any]:
    """The transform flags that were given; the API judges them (a bad combination stops the run with its 422
    naming the option)."""
    given = {
        "image_size": args.image_size,
        "resize_mode": args.resize_mode,
        "resize_only_if_bigger": args.resize_only_if_bigger or None,
        "encode_format": args.encode_format,
        "encode_quality": args.encode_quality,
    }
    return {name: value for name, value in given.items() if value is not None}


def default_output(keywords: list[str], export_format: str) -> str:
    """`KEYWORDS.FORMAT` for an archive or a document; a folder `KEYWORDS-webdataset/` for the shards."""
    stem = "-".join(keywords)[:60]
    return f"{stem}-webdataset" if export_format == ExportFormat.WEBDATASET else f"{stem}.{export_format}"


def _export_options(args: argparse.Namespace) -> dict[str, Any]:
    from pydantic import ValidationError

    from pixcrawler.schemas.export import ExportOptions

    options = {"layout": args.layout, **_transform_options(args)}
    if args.splits is None:
        if args.split_seed:
            raise UsageError("--split-seed needs --splits.")
        return options
    try:
        ExportOptions(split_seed=args.split_seed)
    except ValidationError as error:
        raise UsageError(f"--split-seed {args.split_seed}: {error.errors()[0]['msg']}.") from None
    return {**options, "splits": args.splits, "split_seed": args.split_seed}


LOCAL_ONLY = {
    "--data-dir": "data_dir",
    "--repo": "repo",
    "--host": "host",
    "--aws-port": "aws_port",
    "--port": "port",
    "--allow-loopback": "allow_loopback",
}
"""`crawl`'s flags for the stack it starts on this machine (None or False when not given); with --api none starts."""


def api_base(value: str) -> str:
    """`--api` as a user copies it (the ApiUrl output of `sam deploy`, with or without a trailing slash or
    `/v1`), as the base the client puts `/v1/...` after; anything but an http(s) base URL is refused."""
    refusal = UsageError(
        f"--api takes the API's http(s) base URL, the ApiUrl output of `sam deploy` (https://ID.execute-api."
        f"REGION.amazonaws.com), not {value!r}."
    )
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise refusal from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise refusal
    path = parts.path.rstrip("/").removesuffix("/v1").rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _token(args: argparse.Namespace) -> str:
    """`--token`, else PIXCRAWLER_TOKEN (the flag wins, even empty), as sent after `Bearer `; never echoed."""
    token = args.token if args.token is not None else os.environ.get("PIXCRAWLER_TOKEN", "")
    token = token.strip().removeprefix("Bearer ").strip()
    if not token:
        raise UsageError(
            "--api needs a token from the identity provider the API trusts: pass --token TOKEN or set PIXCRAWLER_TOKEN."
        )
    if not token.isascii() or not token.isprintable() or any(character.isspace() for character in token):
        raise UsageError("the token holds spaces, line breaks or non-ASCII characters; pass the token alone.")
    return token


def _deployed(args: argparse.Namespace, urls: list[str]) -> Client:
    """The client for `crawl --api`: the local stack's flags refused by name, the URL and token checked; then
    one public GET /v1/health, without the token, tells an unreachable host or a URL that is not the PixCrawler
    API apart from a refused request, before the token is sent anywhere or anything is created."""
    from pixcrawler_local.client import ApiError, Client

    given = [
        flag
        for flag, dest in LOCAL_ONLY.items()
        if getattr(args, dest) is not None and getattr(args, dest) is not False
    ]
    if given:
        raise UsageError(
            f"{given[0]} is for the stack `crawl` starts on this machine; with --api none starts: drop it."
        )
    base, token = api_base(args.api), _token(args)
    if not _on_loopback(base):  # a stack on this machine fetches from it if it runs with loopback allowed
        _warn_about_loopback(urls, f"which the crawler behind {urlsplit(base).netloc} cannot reach")
    not_ours = "is --api the ApiUrl output of `sam deploy`?"
    try:
        health = Client(base).get("/v1/health")
    except ApiError as error:
        if error.status == HTTPStatus.NOT_FOUND:
            raise ApiError("GET /v1/health", error.status, error.body, not_ours) from None
        raise
    if not isinstance(health, dict) or "status" not in health:
        body = json.dumps(health)[:200]
        raise ApiError("GET /v1/health", HTTPStatus.OK, body, f"not PixCrawler's answer; {not_ours}")
    return Client(base, token)


def cmd_crawl(args: argparse.Namespace) -> int:
    from pixcrawler.crawl.refusals import describe
    from pixcrawler_local.pipeline import DatasetRequest

    urls = list(args.url or [])
    if args.urls_file:
        urls += _read_urls(args.urls_file)
    providers = args.provider or [Provider.URLS.value if urls else Provider.OPENVERSE.value]
    if Provider.URLS in providers and not urls:
        raise UsageError("the urls provider needs image URLs: pass --url URL (repeatable) or --urls-file FILE.")
    if args.token is not None and args.api is None:
        raise UsageError("--token is for --api URL; the stack `crawl` starts on this machine mints its own.")
    output = Path(args.output or default_output(args.keywords, args.format)).resolve()
    request = DatasetRequest(
        name=" ".join(args.keywords)[:200],
        keywords=args.keywords,
        providers=providers,
        max_images=args.max_images,
        urls=urls or None,
        export_format=args.format,
        export_options=_export_options(args),
        output=output,
    )
    if args.api is not None:
        outcome = _drive(args, _deployed(args, urls), request, "stopping (what it stored stays in the deployed stack)")
    else:
        allowed = args.allow_loopback or Settings.from_env().crawl_allow_loopback
        why = "which the crawler refuses unless you pass --allow-loopback (or set CRAWL_ALLOW_LOOPBACK=1)"
        _warn_about_loopback(urls, None if allowed else why)
        options = _options(args, _data_dir(args.data_dir), args.port, allow_loopback=args.allow_loopback)
        outcome = _run_pipeline(args, options, lambda resources: request)
    valid = outcome.validation["total_images"] - outcome.validation["invalid_images"]
    print(
        f"{outcome.crawl['downloaded_images']} crawled, {valid} valid, {outcome.export['exported_images']} exported "
        f"in {outcome.elapsed:.1f} s -> {outcome.archive}"
    )
    print("stages: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in outcome.stages.items()))
    if refused := describe(outcome.crawl.get("refused") or {}):
        print(f"refused: {refused}")
    if split_counts := outcome.export.get("split_counts"):
        print("splits: " + ", ".join(f"{split} {sum(labels.values())}" for split, labels in split_counts.items()))
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help=f"state directory (env PIXCRAWLER_DATA_DIR; default ./{DEFAULT_DATA_DIR})")
    common.add_argument(
        "--repo", help="repository checkout holding functions/ (env PIXCRAWLER_REPO; default: the editable install's)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="show the functions' logs")
    stack = argparse.ArgumentParser(add_help=False)
    stack.add_argument("--host", help=f"API host (default {DEFAULT_HOST})")
    stack.add_argument("--aws-port", type=int, help="S3/SQS emulator port (default: any free port)")
    pipeline = argparse.ArgumentParser(add_help=False)
    pipeline.add_argument("--quiet", action="store_true", help="no progress bars")
    pipeline.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"give up on a stage after this many seconds (default: never; demo {DEMO_TIMEOUT:.0f})",
    )

    parser = argparse.ArgumentParser(prog="pixcrawler", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", parents=[common, stack, pipeline], help="the whole product, offline")
    demo.add_argument("--port", type=int, default=0, help="API port (default: any free port)")
    demo.add_argument("--output", help="where to save the exported zip (default: in the demo's data dir)")
    demo.add_argument("--keep", action="store_true", help="keep the demo's database and objects")
    demo.set_defaults(run=cmd_demo)

    serve = commands.add_parser("serve", parents=[common, stack], help="the API and the workers, locally")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PIXCRAWLER_PORT", "3000")))
    serve.add_argument("--visibility-timeout", type=int, default=60, help="seconds before a failed message returns")
    serve.add_argument(
        "--max-receive-count",
        type=int,
        default=DEFAULT_MAX_RECEIVE_COUNT,
        help=f"receives before a message goes to its DLQ (default {DEFAULT_MAX_RECEIVE_COUNT}, as deployed)",
    )
    serve.add_argument("--sweep-interval", type=float, default=300, help="seconds between stuck-chunk sweeps")
    serve.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="concurrent invocations per worker (threads share the layer's module state; Lambda would not)",
    )
    serve.add_argument(
        "--allow-loopback",
        action="store_true",
        help="let the crawler fetch from this machine (127.0.0.1, localhost); also CRAWL_ALLOW_LOOPBACK=1",
    )
    serve.add_argument("--email", default="you@example.com", help="who the printed dataset-browser address signs in as")
    serve.set_defaults(run=cmd_serve)

    token = commands.add_parser("token", parents=[common], help="mint a token the local API accepts")
    token.add_argument("--email", required=True)
    token.add_argument("--hours", type=float, default=24.0)
    token.set_defaults(run=cmd_token)

    migrate = commands.add_parser("migrate", parents=[common], help="migrate DATABASE_URL or the embedded database")
    migrate.set_defaults(run=cmd_migrate)

    crawl = commands.add_parser("crawl", parents=[common, stack, pipeline], help="build a dataset from the web")
    crawl.add_argument("keywords", nargs="+", metavar="KEYWORD")
    crawl.add_argument("--provider", action="append", choices=_values(Provider))
    crawl.add_argument("--max-images", type=int, default=100)
    crawl.add_argument("--format", default=ExportFormat.ZIP.value, choices=_values(ExportFormat))
    crawl.add_argument("--layout", default=ExportLayout.BY_KEYWORD.value, choices=_values(ExportLayout))
    crawl.add_argument("--image-size", type=int, help="resize to this many pixels (16-8192), as --resize-mode says")
    crawl.add_argument(
        "--resize-mode",
        choices=_values(ResizeMode),
        help="img2dataset's modes: keep_ratio (shorter side), keep_ratio_largest (longer side), center_crop, border",
    )
    crawl.add_argument("--resize-only-if-bigger", action="store_true", help="never enlarge a smaller image")
    crawl.add_argument(
        "--encode-format",
        choices=_values(EncodeFormat),
        help="output format of the images (default original: as stored, PNG when resizing GIF, BMP, ...)",
    )
    crawl.add_argument("--encode-quality", type=int, help="JPEG and WebP quality, 1-100 (default 95)")
    crawl.add_argument(
        "--splits",
        type=_splits,
        metavar="NAME=FRACTION,...",
        help="split the export, e.g. train=0.8,validation=0.1,test=0.1 (the README tells the rule)",
    )
    crawl.add_argument("--split-seed", type=int, default=0, help="another seed gives another split (default 0)")
    crawl.add_argument(
        "--output",
        help="archive path (default: KEYWORDS.FORMAT here); for webdataset a folder for every file the export "
        "lists: shards, classes.txt, croissant.json (default: KEYWORDS-webdataset/)",
    )
    crawl.add_argument("--url", action="append", help="an image URL for the urls provider (repeatable)")
    crawl.add_argument("--urls-file", help="a file of image URLs, one a line")
    crawl.add_argument("--port", type=int, help="API port (default: any free port)")
    crawl.add_argument(
        "--allow-loopback",
        action="store_true",
        help="let the crawler fetch from this machine (127.0.0.1, localhost); also CRAWL_ALLOW_LOOPBACK=1",
    )
    crawl.add_argument(
        "--api",
        metavar="URL",
        help="drive a deployed stack through its API (the ApiUrl output of `sam deploy`) instead of starting one here",
    )
    crawl.add_argument(
        "--token", help="bearer token for --api (env PIXCRAWLER_TOKEN, which keeps it out of `ps`); never printed"
    )
    crawl.set_defaults(run=cmd_crawl)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pixcrawler_local.client import ApiError, Unreachable
    from pixcrawler_local.functions import RepositoryNotFound
    from pixcrawler_local.pipeline import StageFailed
    from pixcrawler_local.ports import PortInUse
    from pixcrawler_local.stack import DataDirBusy

    args = _parser().parse_args(argv)
    heap.tune()
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")  # pgserver's runtime dir
    _logging(args.verbose, server=args.command == "serve")
    _stop_on_signals()
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except UsageError as error:
        print(f"pixcrawler {args.command}: {error}", file=sys.stderr)
        return 2
    except (
        PortInUse,
        DataDirBusy,
        RepositoryNotFound,
        StageFailed,
        ApiError,
        Unreachable,
        SettingsError,
        TimeoutError,
        FileNotFoundError,
    ) as error:
        print(f"pixcrawler {args.command}: {error}", file=sys.stderr)
        return 1
