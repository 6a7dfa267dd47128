"""`sam build` packages every function with the layer, and the BUILT artefacts run against PostgreSQL and moto.

Each built function is loaded from the build directory by CPython 3.12 (Lambda's runtime) with only the
standard library, the function's folder, the built layer and the runtime's boto3 on sys.path: never the
source tree. This proves the packaging (layer contents, platform wheels, migrations beside the hook), not
just the code. The build runs once per test session (about a minute on two busy cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode
from moto.server import ThreadedMotoServer

from pixcrawler.messages import ChunkMessage, DispatchMessage, ExportMessage, Message, ValidationMessage
from pixcrawler_local.httphost import HttpHost
from tests.conftest import QUEUES, ROOT
from tests.deploy.conftest import REPLY_PATH, custom_resource_event, head_revision, python312, replies
from tests.deploy.test_template import TEMPLATE, cli, cli_env
from tests.events import http_event, sqs_event, sqs_record

RUNNER = Path(__file__).with_name("invoke_built.py")
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))
# A job id no row has: each worker must run the record through the layer and the database and answer in
# the partial-batch shape (Powertools refuses an event without records).
MISSING = 987_654_321
QUEUE_MESSAGES: dict[str, Message] = {
    "dispatch": DispatchMessage(crawl_job_id=MISSING),
    "crawl": ChunkMessage(crawl_job_id=MISSING, chunk_id=MISSING),
    "validate": ValidationMessage(validation_job_id=MISSING),
    "export": ExportMessage(export_job_id=MISSING),
}
SCHEDULED_EVENT = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-25T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"],
    "detail": {},
}
UNCHECKED_HASH = 0b01  # .pyc flags (PEP 552): hash-based, not checked against the source


def built_names() -> dict[str, str]:
    """functions/<folder> -> logical id, from the template's CodeUri values."""
    template, errors = decode(str(TEMPLATE))
    assert template is not None, errors
    return {
        resource["Properties"]["CodeUri"].strip("/").split("/")[-1]: name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("sam") / "build"
    env = cli_env() | {"PATH": f"{python312().parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [cli("sam"), "build", "--template-file", str(TEMPLATE), "--build-dir", str(build), "--parallel"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return build


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the Lambda runtime adds after the layer: boto3 and its pure-Python dependencies."""
    target = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, target / origin.name)
    return target


@pytest.fixture(scope="module")
def moto_server() -> Iterator[dict[str, str]]:
    """moto over HTTP, so another interpreter can reach it: the data bucket and the work queues."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **credentials)
    sqs = boto3.client("sqs", endpoint_url=endpoint, **credentials)
    s3.create_bucket(Bucket="pixcrawler-built")
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DATA_BUCKET": "pixcrawler-built",
    }
    for name in QUEUES:
        env[f"{name.upper()}_QUEUE_URL"] = sqs.create_queue(QueueName=f"built-{name}")["QueueUrl"]
    try:
        yield env
    finally:
        server.stop()


def invoke_built(
    build: Path, runtime: Path, function: str, event: dict[str, Any], env: dict[str, str], tmp_path: Path
) -> dict[str, Any]:
    function_dir = build / built_names()[function]
    event_path, result_path = tmp_path / "event.json", tmp_path / "result.json"
    event_path.write_text(json.dumps(event))
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    result = subprocess.run(
        [str(python312()), "-I", "-S", str(RUNNER)]
        + [str(path) for path in (function_dir, build / "CommonLayer" / "python", runtime, event_path, result_path)],
        capture_output=True,
        text=True,
        env=base | env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    outcome: dict[str, Any] = json.loads(result_path.read_text())
    assert outcome["origins"]["app"] == str(function_dir / "app.py")
    assert outcome["origins"]["pixcrawler"].startswith(str(build / "CommonLayer" / "python"))
    assert not any(entry.startswith(str(ROOT)) for entry in outcome["path"]), outcome["path"]
    return outcome


@pytest.fixture
def function_env(moto_server: dict[str, str], migrated: str) -> dict[str, str]:
    return moto_server | {
        "DATABASE_URL": migrated,
        "DOWNLOAD_LINK_SECRET": uuid.uuid4().hex,
        "PUBLIC_API_URL": "https://api.example.com",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "PixCrawler",
        "POWERTOOLS_SERVICE_NAME": "built",
    }


def test_every_function_folder_is_in_the_template() -> None:
    assert set(FUNCTIONS) <= set(built_names()), "add the new function to template.yaml"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_built_function_handles_a_real_event(
    function: str,
    build_dir: Path,
    runtime_dir: Path,
    function_env: dict[str, str],
    fresh_database: str,
    reply_host: HttpHost,
    tmp_path: Path,
) -> None:
    if function == "migrate":  # an empty database: the migrations must have shipped beside the hook
        event = custom_resource_event("Create", reply_host.url(REPLY_PATH))
        env = function_env | {"DATABASE_URL": fresh_database}
        assert invoke_built(build_dir, runtime_dir, function, event, env, tmp_path)["result"] == {"Status": "SUCCESS"}
        [reply] = replies(reply_host)
        assert (reply["Status"], reply["Data"]["Revision"]) == ("SUCCESS", head_revision())
    elif function == "api":
        event = http_event("GET", "/v1/health")
        assert (
            invoke_built(build_dir, runtime_dir, function, event, function_env, tmp_path)["result"]["statusCode"] == 200
        )
        page = invoke_built(build_dir, runtime_dir, function, http_event("GET", "/v1/app"), function_env, tmp_path)
        assert page["result"]["statusCode"] == 200  # the dataset browser's page, script and styles shipped
        assert "PixCrawler dataset browser" in page["result"]["body"]
    elif function in QUEUE_MESSAGES:
        record = sqs_record(QUEUE_MESSAGES[function], queue=f"built-{function}")
        result = invoke_built(build_dir, runtime_dir, function, sqs_event(record), function_env, tmp_path)["result"]
        assert result["batchItemFailures"] in ([], [{"itemIdentifier": record["messageId"]}])
    else:  # scheduled: an EventBridge event; the handler must run to completion
        invoke_built(build_dir, runtime_dir, function, SCHEDULED_EVENT, function_env, tmp_path)


def test_built_layer_ships_hash_based_bytecode_that_python_uses(build_dir: Path) -> None:
    """Zip tools normalise modification times; the shipped .pyc files must be used anyway, not recompiled."""
    layer = build_dir / "CommonLayer" / "python"
    sources = [path for path in layer.rglob("*.py") if "__pycache__" not in path.parts]
    for source in sources:
        os.utime(source, (315532800, 315532800))  # 1980-01-01, as a zip stores them
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == UNCHECKED_HASH, compiled
    imports = "pixcrawler.db, pixcrawler.models, pixcrawler.schemas, pydantic, aws_lambda_powertools.event_handler"
    code = f"import sys; sys.path[:0] = [{str(layer)!r}]; import {imports}"
    result = subprocess.run([str(python312()), "-I", "-S", "-B", "-v", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    loaded = [path for path in re.findall(r"^# code object from '?([^'\n]+)'?$", result.stderr, re.MULTILINE)]
    from_layer = [path for path in loaded if path.startswith(str(layer))]
    assert len(from_layer) > 100
    assert [path for path in from_layer if not path.endswith(".pyc")] == []


def test_the_layer_ships_neither_the_local_stack_nor_its_dependencies(build_dir: Path) -> None:
    """`pixcrawler demo|serve|crawl` runs on a laptop; no Lambda imports it, so no Lambda should carry it."""
    layer = build_dir / "CommonLayer" / "python"
    assert (layer / "pixcrawler" / "db.py").is_file()
    shipped = {path.name.lower() for path in layer.iterdir()}
    assert not shipped & {"pixcrawler_local", "moto", "pgserver", "werkzeug", "aiohttp", "jwt", "tqdm"}
    assert not (layer / "pixcrawler" / "local").exists()
