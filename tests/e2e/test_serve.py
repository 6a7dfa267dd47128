"""`pixcrawler serve` over real HTTP: a token from `pixcrawler token`, a whole dataset flow, dead-lettering of
a poison message, and state that survives a restart."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from sqlalchemy import Engine, text

from pixcrawler_local import registry, samples, tokens
from pixcrawler_local.httphost import HttpHost, Response
from pixcrawler_local.stack import load_secrets
from tests.e2e.conftest import PIXCRAWLER, pixcrawler

SERVE_OPTIONS = ("--port", "0", "--allow-loopback", "--visibility-timeout", "2", "--max-receive-count", "2")


@contextmanager
def serving(data_dir: Path, env: dict[str, str], cwd: Path, killed: bool = False) -> Iterator[dict[str, Any]]:
    """Start `pixcrawler serve`, wait for its state file, stop it with Ctrl-C (SIGINT) at the end, unless the
    block `killed` it (SIGKILL: nothing is cleaned up, the state file stays)."""
    state_file = data_dir / "stack.json"
    log = (cwd / "serve.log").open("a")
    process = subprocess.Popen(
        [PIXCRAWLER, "serve", "--data-dir", str(data_dir), *SERVE_OPTIONS],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not state_file.exists() or json.loads(state_file.read_text())["pid"] != process.pid:
            assert process.poll() is None, (cwd / "serve.log").read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        yield json.loads(state_file.read_text())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=60) in ((-signal.SIGKILL,) if killed else (0, 130))
        finally:
            process.kill()
            log.close()
    assert state_file.exists() == killed


def run_job(
    api: str, start: str, jobs: str, headers: dict[str, str], body: dict[str, Any], timeout: float = 60
) -> dict[str, Any]:
    """POST the job, then poll it until it ends; its final state."""
    started = requests.post(api + start, json=body, headers=headers, timeout=10)
    assert started.status_code == 202, started.text
    return wait_job(api, f"{jobs}/{started.json()['id']}", headers, timeout)


def wait_job(api: str, job: str, headers: dict[str, str], timeout: float) -> dict[str, Any]:
    """Poll the job until it ends (or the time is up); its last state."""
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = requests.get(f"{api}{job}", headers=headers, timeout=10).json()
        if state["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


def sqs_client(stack: dict[str, Any]) -> Any:
    return boto3.client(
        "sqs", endpoint_url=stack["aws_endpoint_url"], region_name=stack["region"],
        aws_access_key_id="local", aws_secret_access_key="local",
    )  # fmt: skip


def queue_depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def test_serve_runs_the_product_over_http(tmp_path: Path, clean_env: dict[str, str]) -> None:
    data_dir = tmp_path / "state"
    elsewhere = tmp_path / "elsewhere"  # another terminal, in another directory, with no --data-dir
    elsewhere.mkdir()

    with HttpHost() as images:
        jpeg = {"Content-Type": "image/jpeg"}
        for seed in range(6):
            images.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 200, 150), headers=jpeg)
        urls = [images.url(f"/{seed}.jpg") for seed in range(6)]

        with serving(data_dir, clean_env, tmp_path) as stack:
            api = stack["api_url"]
            token = pixcrawler("token", "--email", "ada@example.com", env=clean_env, cwd=elsewhere)
            assert token.returncode == 0, token.stderr
            assert list(elsewhere.iterdir()) == []  # no secret invented in ./.pixcrawler
            auth = {"Authorization": f"Bearer {token.stdout.strip()}"}
            assert requests.get(f"{api}/v1/health", timeout=10).status_code == 200
            assert requests.get(f"{api}/v1/openapi.json", timeout=10).json()["paths"]
            assert "swagger" in requests.get(f"{api}/v1/docs", timeout=10).text.lower()
            assert requests.post(f"{api}/v1/projects", json={"name": "x"}, timeout=10).status_code == 401
            bad = {"Authorization": "Bearer " + token.stdout.strip()[:-4] + "AAAA"}
            assert requests.post(f"{api}/v1/projects", json={"name": "x"}, headers=bad, timeout=10).status_code == 401

            project = requests.post(f"{api}/v1/projects", json={"name": "Birds"}, headers=auth, timeout=10).json()
            crawl = run_job(
                api, f"/v1/projects/{project['id']}/crawl-jobs", "/v1/crawl-jobs", auth,
                {"name": "c", "keywords": ["birds"], "max_images": 10, "providers": ["urls"], "urls": urls},
            )  # fmt: skip
            assert crawl["status"] == "completed" and crawl["downloaded_images"] == 6, crawl
            validation = run_job(
                api, f"/v1/crawl-jobs/{crawl['id']}/validation-jobs", "/v1/validation-jobs", auth,
                {"name": "v", "rules": {}},
            )  # fmt: skip
            assert validation["status"] == "completed" and validation["invalid_images"] == 0, validation
            export = run_job(
                api, f"/v1/crawl-jobs/{crawl['id']}/export-jobs", "/v1/export-jobs", auth,
                {"name": "e", "format": "zip", "options": {}},
            )  # fmt: skip
            assert export["status"] == "completed", export
            link = export["download_url"]
            assert link.startswith(f"{api}/v1/downloads/")
            first = requests.get(link, timeout=30)  # no token: the link is its own key; 302 to storage
            assert first.status_code == 200 and first.history[0].status_code == 302
            with zipfile.ZipFile(io.BytesIO(first.content)) as bundle:
                assert sum(name.endswith(".jpg") for name in bundle.namelist()) == 6

            sqs = sqs_client(stack)
            queue = stack["queues"]["validation"]
            sqs.send_message(QueueUrl=queue["url"], MessageBody='{"not": "a validation message"}')
            deadline = time.monotonic() + 30
            while queue_depth(sqs, queue["dlq_url"]) == 0 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert queue_depth(sqs, queue["dlq_url"]) == 1
            assert queue_depth(sqs, queue["url"]) == 0

        with serving(data_dir, clean_env, tmp_path) as stack:  # a restart keeps the database and the objects
            api = stack["api_url"]
            again = requests.get(f"{api}/v1/projects/{project['id']}", headers=auth, timeout=10)
            assert again.status_code == 200 and again.json()["name"] == "Birds"
            relinked = link.replace(link.split("/v1/")[0], api)  # the port may differ after a restart
            assert requests.get(relinked, timeout=30).content == first.content
            assert queue_depth(sqs_client(stack), stack["queues"]["validation"]["dlq_url"]) == 1  # kept too


def test_a_busy_port_gets_a_sentence_not_a_traceback(tmp_path: Path, clean_env: dict[str, str]) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with HttpHost() as busy:
        port = busy.base_url.rsplit(":", 1)[1]
        for data_dir in (tmp_path / "new", kept):
            result = pixcrawler("serve", "--data-dir", str(data_dir), "--port", port, env=clean_env, cwd=tmp_path)
            assert result.returncode == 1
            assert "is already in use" in result.stderr and "--port" in result.stderr
            assert "Traceback" not in result.stderr
    assert not (tmp_path / "new").exists()  # a failed serve leaves no new data dir behind
    assert [path.name for path in kept.iterdir()] == ["notes.txt"]  # and an existing one untouched


def test_token_never_invents_a_secret(tmp_path: Path, clean_env: dict[str, str]) -> None:
    nowhere = pixcrawler("token", "--email", "ada@example.com", env=clean_env, cwd=tmp_path)
    unserved = pixcrawler("token", "--data-dir", "d", "--email", "ada@example.com", env=clean_env, cwd=tmp_path)
    for result in (nowhere, unserved):
        assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
        assert result.stderr.startswith("pixcrawler token: ") and result.stderr.count("\n") == 1, result.stderr
        assert "--data-dir" in result.stderr
    assert "no `pixcrawler serve` is running" in nowhere.stderr
    assert "holds no secrets" in unserved.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]  # neither ./.pixcrawler nor ./d was made


def test_token_picks_the_one_running_stack_and_asks_among_several(
    tmp_path: Path, clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two listed stacks, each a live process with a listening API port (this test's own, and a sleeper's)."""
    env = {**clean_env, "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    monkeypatch.setenv("XDG_RUNTIME_DIR", env["XDG_RUNTIME_DIR"])
    secret = load_secrets(tmp_path / "first")["token_secret"]
    with HttpHost() as first_api, HttpHost() as second_api, subprocess.Popen(["sleep", "60"]) as sleeper:
        try:
            registry.announce(registry.RunningStack(os.getpid(), tmp_path / "first", first_api.base_url))
            one = pixcrawler("token", "--email", "ada@example.com", env=env, cwd=tmp_path)
            assert one.returncode == 0, one.stderr
            assert (tokens.verify(secret, one.stdout.strip()) or {}).get("email") == "ada@example.com"

            registry.announce(registry.RunningStack(sleeper.pid, tmp_path / "second", second_api.base_url))
            two = pixcrawler("token", "--email", "ada@example.com", env=env, cwd=tmp_path)
        finally:
            sleeper.kill()
    assert two.returncode == 2 and two.stdout == "", two.stdout + two.stderr
    assert two.stderr.startswith("pixcrawler token: 2 stacks are running") and "--data-dir" in two.stderr
    assert str(tmp_path / "first") in two.stderr and str(tmp_path / "second") in two.stderr


def running(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped by whoever adopted it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_serve_keeps_every_accepted_object_and_message(
    tmp_path: Path, clean_env: dict[str, str], engine: Engine, migrated: str
) -> None:
    """SIGKILL mid-crawl: after a restart on the same data dir every image row has its object, every accepted
    message is queued, and the crawl completes (its chunks in flight are delivered again at once)."""
    data_dir = tmp_path / "state"
    env = {**clean_env, "DATABASE_URL": migrated, "CRAWL_URLS_PER_CHUNK": "4", "DOWNLOAD_CONCURRENCY": "2"}
    count = 40
    with HttpHost() as images:
        for seed in range(count):
            images.routes[f"/{seed}.jpg"] = Response(
                samples.jpeg(seed, 320, 240), headers={"Content-Type": "image/jpeg"}, delay=0.2
            )
        urls = [images.url(f"/{seed}.jpg") for seed in range(count)]

        def stored_rows() -> list[str]:
            with engine.connect() as connection:
                return list(connection.execute(text("SELECT storage_url FROM images")).scalars())

        with serving(data_dir, env, tmp_path, killed=True) as stack:
            api = stack["api_url"]
            auth = {"Authorization": f"Bearer {tokens.mint(load_secrets(data_dir)['token_secret'], 'ada@e.com')}"}
            project = requests.post(f"{api}/v1/projects", json={"name": "Birds"}, headers=auth, timeout=10).json()
            started = requests.post(
                f"{api}/v1/projects/{project['id']}/crawl-jobs",
                json={"name": "c", "keywords": ["birds"], "max_images": count, "providers": ["urls"], "urls": urls},
                headers=auth,
                timeout=10,
            )
            assert started.status_code == 202, started.text
            sqs = sqs_client(stack)
            parked = stack["queues"]["export"]["dlq_url"]  # nothing consumes a dead-letter queue
            accepted = {sqs.send_message(QueueUrl=parked, MessageBody=f"m{n}")["MessageId"] for n in range(5)}
            deadline = time.monotonic() + 60
            while len(stored_rows()) < 8 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(stack["pid"], signal.SIGKILL)
        rows_at_kill = stored_rows()
        assert 0 < len(rows_at_kill) < count, "the kill did not land mid-crawl"
        deadline = time.monotonic() + 30
        while running(stack["emulator_pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(stack["emulator_pid"]), "the S3/SQS emulator outlived its stack"

        with serving(data_dir, env, tmp_path) as stack:
            s3 = boto3.client(
                "s3", endpoint_url=stack["aws_endpoint_url"], region_name=stack["region"],
                aws_access_key_id="local", aws_secret_access_key="local",
            )  # fmt: skip
            for key in rows_at_kill:
                assert s3.head_object(Bucket=stack["bucket"], Key=key)["ContentLength"] > 0, key
            sqs = sqs_client(stack)
            parked = stack["queues"]["export"]["dlq_url"]
            kept = sqs.receive_message(QueueUrl=parked, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
            assert {message["MessageId"] for message in kept} == accepted
            job = wait_job(stack["api_url"], f"/v1/crawl-jobs/{started.json()['id']}", auth, timeout=120)
            assert job["status"] == "completed" and job["downloaded_images"] == count, job
            for key in stored_rows():
                assert s3.head_object(Bucket=stack["bucket"], Key=key)["ContentLength"] > 0, key
