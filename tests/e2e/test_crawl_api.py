"""`pixcrawler crawl --api URL`: the CLI against a stack it did not start, through the public API only. One
`pixcrawler serve` in another process stands in for the deployed stack for the whole module; every crawl
here is its own `pixcrawler crawl` process, and what it did is read back through the API."""

from __future__ import annotations

import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from pixcrawler_local import samples
from pixcrawler_local.httphost import HttpHost, Response
from tests.e2e.conftest import PIXCRAWLER, fresh_env, pixcrawler
from tests.e2e.test_serve import serving

JPEG = {"Content-Type": "image/jpeg"}
IMAGES = {f"/{seed}.jpg": samples.jpeg(seed, 160, 120) for seed in range(8)}
SECRET = "s3cr3t-t0ken-never-shown"


@dataclass
class Deployed:
    api: str
    token: str
    images: HttpHost
    mint: Any
    """`mint(*args)`: `pixcrawler token --email ... *args` for this stack, its stdout."""

    def get(self, path: str) -> Any:
        answer = requests.get(self.api + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def project(self, name: str) -> dict[str, Any]:
        """The project `crawl` made for `name`, with its crawl jobs."""
        found = [project for project in self.get("/v1/projects?limit=100")["items"] if project["name"] == name]
        assert len(found) == 1, found
        detail: dict[str, Any] = self.get(f"/v1/projects/{found[0]['id']}")
        return detail

    def urls(self, *paths: str) -> list[str]:
        return [arg for path in paths for arg in ("--url", self.images.url(path))]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("deployed")
    env, state = fresh_env(root / "home"), root / "state"

    def mint(*args: str) -> str:
        token = pixcrawler("token", "--data-dir", str(state), "--email", "ada@example.com", *args, env=env, cwd=root)
        assert token.returncode == 0, token.stderr
        return token.stdout.strip()

    with HttpHost() as images, serving(state, env, root) as stack:
        for path, body in IMAGES.items():
            images.routes[path] = Response(body, headers=JPEG)
        images.routes["/page.jpg"] = Response(b"<!doctype html>", headers=JPEG)
        images.routes["/slow.jpg"] = Response(samples.jpeg(1), headers=JPEG, delay=8)
        yield Deployed(stack["api_url"], mint(), images, mint)


def one_sentence(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The error line of a run that must fail with `code`: one line on stderr, prefixed, no traceback."""
    assert result.returncode == code, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("pixcrawler crawl: "), result.stderr
    return lines[0]


def test_crawl_against_the_api_builds_the_dataset_there_and_downloads_it(
    deployed: Deployed, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    urls = deployed.urls(*IMAGES, "/page.jpg", "/missing.jpg")
    result = pixcrawler(
        "crawl", "herons", *urls, "--max-images", "5", "--format", "tar", "--output", "herons.tar",
        "--api", deployed.api + "/", "--token", deployed.token, "--quiet",
        env=clean_env, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 crawled, 5 valid, 5 exported in " in result.stdout and str(tmp_path / "herons.tar") in result.stdout
    assert "refused: 1 HTTP error status, 1 not an image" in result.stdout
    assert "stages: crawl " in result.stdout and ", download " in result.stdout
    with tarfile.open(tmp_path / "herons.tar") as archive:
        images = [archive.extractfile(m) for m in archive.getmembers() if m.name.endswith(".jpg")]
        assert len(images) == 5 and all(file and file.read() in IMAGES.values() for file in images)
    assert not (tmp_path / ".pixcrawler").exists() and not (tmp_path / "home" / ".cache").exists()  # nothing local

    project = deployed.project("herons")  # the rows it made, read through the API
    (crawl,) = project["crawl_jobs"]
    assert crawl["status"] == "completed" and crawl["downloaded_images"] == 5, crawl
    assert crawl["refused"] == {"http_status": 1, "not_an_image": 1}
    (validation,) = deployed.get(f"/v1/crawl-jobs/{crawl['id']}/validation-jobs")["items"]
    assert validation["status"] == "completed" and validation["total_images"] == 5
    exports = [job for job in deployed.get("/v1/export-jobs?limit=100")["items"] if job["crawl_job_id"] == crawl["id"]]
    assert [(job["status"], job["format"], job["exported_images"]) for job in exports] == [("completed", "tar", 5)]
    assert exports[0]["file_size"] == (tmp_path / "herons.tar").stat().st_size


def test_the_token_from_the_environment_and_a_v1_url_fetch_every_webdataset_file(
    deployed: Deployed, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """As pasted (with `Bearer ` and a line break); `-v` logs too, and neither they nor the progress bars ever
    show the token."""
    import webdataset as wds

    result = pixcrawler(
        "crawl", "kites", *deployed.urls(*list(IMAGES)[:5]), "--format", "webdataset",
        "--api", deployed.api + "/v1/", "-v",
        env={**clean_env, "PIXCRAWLER_TOKEN": f"Bearer {deployed.token}\n"}, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert deployed.token not in result.stdout + result.stderr
    folder = tmp_path / "kites-webdataset"
    assert "5 exported" in result.stdout and str(folder) in result.stdout
    assert "download" in result.stderr  # the progress bars, as locally
    assert sorted(path.name for path in folder.iterdir()) == ["classes.txt", "croissant.json", "train-000000.tar"]
    assert (folder / "classes.txt").read_text() == "kites\n"
    read = list(wds.WebDataset([str(folder / "train-000000.tar")], shardshuffle=False).decode("pil"))
    assert len(read) == 5 and all(sample["jpg"].size == (160, 120) for sample in read)


def test_a_refused_token_is_said_without_showing_it(
    deployed: Deployed, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A forged token given by flag beats a good one in the environment; an expired one is refused alike."""
    forged = deployed.token[:-6] + "AAAAAA"
    expired = deployed.mint("--hours", "-1")
    for token in (forged, expired):
        result = pixcrawler(
            "crawl", "owls", *deployed.urls("/0.jpg"), "--api", deployed.api, "--token", token, "-v",
            env={**clean_env, "PIXCRAWLER_TOKEN": deployed.token}, cwd=tmp_path,
        )  # fmt: skip
        line = one_sentence(result, 1)
        assert "POST /v1/projects answered 401" in line and "the token was refused" in line, line
        assert "has expired" in line and token not in result.stdout + result.stderr
    assert not any(project["name"] == "owls" for project in deployed.get("/v1/projects?limit=100")["items"])


def test_a_failed_job_stops_the_run_with_its_reason(
    deployed: Deployed, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    result = pixcrawler(
        "crawl", "ghosts", *deployed.urls("/missing.jpg"), "--api", deployed.api, "--token", deployed.token,
        "--quiet", env=clean_env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    line = one_sentence(result, 1)
    (crawl,) = deployed.project("ghosts")["crawl_jobs"]
    assert crawl["status"] == "failed"
    assert line == (
        f"pixcrawler crawl: crawl job {crawl['id']} ended failed: no image could be downloaded from 1 candidate: "
        "1 HTTP error status"
    )
    assert not (tmp_path / "ghosts.zip").exists()


def test_the_api_s_own_refusal_names_the_field(deployed: Deployed, tmp_path: Path, clean_env: dict[str, str]) -> None:
    result = pixcrawler(
        "crawl", "wrens", *deployed.urls("/0.jpg"), "--max-images", "0", "--api", deployed.api,
        env={**clean_env, "PIXCRAWLER_TOKEN": deployed.token}, cwd=tmp_path,
    )  # fmt: skip
    line = one_sentence(result, 1)
    assert "POST /v1/projects/" in line and "/crawl-jobs answered 422: The request is not valid (" in line, line
    assert "max_images: " in line


def test_a_url_that_is_not_the_api_is_told_apart(deployed: Deployed, tmp_path: Path, clean_env: dict[str, str]) -> None:
    """The image host answers 404 to /v1/health: it is not the API, and nothing was asked of it with the token."""
    seen = len(deployed.images.received)
    result = pixcrawler(
        "crawl", "gulls", "--url", "https://example.org/a.jpg", "--api", deployed.images.base_url,
        "--token", SECRET, env=clean_env, cwd=tmp_path,
    )  # fmt: skip
    line = one_sentence(result, 1)
    assert "GET /v1/health answered 404" in line and "ApiUrl output of `sam deploy`" in line, line
    asked = deployed.images.received[seen:]
    assert [(request.method, request.path) for request in asked] == [("GET", "/v1/health")]
    assert "Authorization" not in asked[0].headers  # the token goes to the API only once it answered as one


def test_ctrl_c_cancels_the_remote_crawl_job(deployed: Deployed, tmp_path: Path, clean_env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [PIXCRAWLER, "crawl", "snails", *deployed.urls("/slow.jpg"), "--api", deployed.api, "--quiet"],
        env={**clean_env, "PIXCRAWLER_TOKEN": deployed.token}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "/slow.jpg" not in deployed.images.requests and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)  # the stack's crawl worker is downloading for the job
    assert "/slow.jpg" in deployed.images.requests, process.communicate()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted: cancelling the crawl" in stderr and "Traceback" not in stderr
    (crawl,) = deployed.project("snails")["crawl_jobs"]
    assert crawl["status"] == "cancelled"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("api", "said"),
    [
        (f"http://127.0.0.1:{_closed_port()}", "the connection was refused (nothing listens on that port)"),
        ("http://pixcrawler-nowhere.invalid", "its host name does not resolve (DNS)"),
    ],
)
def test_an_unreachable_api_is_said_in_words(api: str, said: str, tmp_path: Path, clean_env: dict[str, str]) -> None:
    result = pixcrawler("crawl", "cats", "--api", api, "--token", SECRET, env=clean_env, cwd=tmp_path)
    assert one_sentence(result, 1) == f"pixcrawler crawl: cannot reach {api}: {said}"
    assert SECRET not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--api", "http://127.0.0.1:9"], "--api needs a token"),
        (["--api", "ftp://example.org", "--token", SECRET], "--api takes the API's http(s) base URL"),
        (["--api", "127.0.0.1:3000", "--token", SECRET], "not '127.0.0.1:3000'"),
        (["--api", "http://example.org:port", "--token", SECRET], "--api takes the API's http(s) base URL"),
        (["--api", "http://127.0.0.1:9", "--token", "two words"], "the token holds spaces"),
        (["--api", "http://127.0.0.1:9", "--token", SECRET, "--data-dir", "d"], "--data-dir is for the stack"),
        (["--api", "http://127.0.0.1:9", "--token", SECRET, "--port", "0"], "--port is for the stack"),
        (["--api", "http://127.0.0.1:9", "--token", SECRET, "--allow-loopback"], "--allow-loopback is for the stack"),
        (["--api", "http://127.0.0.1:9", "--token", SECRET, "--repo", "."], "--repo is for the stack"),
        (["--token", SECRET], "--token is for --api URL"),
    ],
)
def test_usage_errors_with_api_are_one_sentence_and_exit_2(
    arguments: list[str], named: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """Refused before any request (port 9 would refuse it) and before any local state is made."""
    env = {**clean_env, "PIXCRAWLER_REPO": str(tmp_path), "PIXCRAWLER_DATA_DIR": str(tmp_path / "state")}
    result = pixcrawler("crawl", "cats", *arguments, env=env, cwd=tmp_path)
    line = one_sentence(result, 2)
    assert named in line and SECRET not in line
    assert not (tmp_path / "state").exists() and not (tmp_path / ".pixcrawler").exists()


def test_a_variable_for_the_local_stack_is_not_a_flag_given(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """PIXCRAWLER_DATA_DIR and PIXCRAWLER_REPO set in a shell do not make `--api` refuse: only typed flags do."""
    env = {**clean_env, "PIXCRAWLER_REPO": str(tmp_path), "PIXCRAWLER_DATA_DIR": str(tmp_path / "state")}
    api = f"http://127.0.0.1:{_closed_port()}"
    result = pixcrawler("crawl", "cats", "--api", api, "--token", SECRET, env=env, cwd=tmp_path)
    assert "cannot reach" in one_sentence(result, 1)
