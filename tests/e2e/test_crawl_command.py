"""`pixcrawler crawl`: the same pipeline for real use (here a URL list on a loopback host), and Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from pixcrawler_local import samples
from pixcrawler_local.httphost import HttpHost, Response
from tests.e2e.conftest import PIXCRAWLER, pixcrawler

JPEG = {"Content-Type": "image/jpeg"}


def test_crawl_builds_an_archive_from_a_url_list(tmp_path: Path, clean_env: dict[str, str]) -> None:
    with HttpHost() as host:
        for seed in range(8):
            host.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 160, 120), headers=JPEG)
        host.routes["/page.jpg"] = Response(b"<!doctype html>", headers=JPEG)
        paths = [*(f"/{seed}.jpg" for seed in range(8)), "/page.jpg", "/missing.jpg"]
        urls = [arg for path in paths for arg in ("--url", host.url(path))]
        result = pixcrawler(
            "crawl", "birds", "--provider", "urls", *urls, "--max-images", "5", "--format", "tar",
            "--output", "birds.tar", "--data-dir", str(tmp_path / "state"), "--allow-loopback", "--quiet",
            env=clean_env, cwd=tmp_path, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 crawled" in result.stdout and str(tmp_path / "birds.tar") in result.stdout
    assert "refused: 1 HTTP error status, 1 not an image" in result.stdout
    assert re.search(
        r"^stages: crawl [\d.]+ s, validate [\d.]+ s, export [\d.]+ s, download [\d.]+ s$", result.stdout, re.M
    )
    with tarfile.open(tmp_path / "birds.tar") as archive:
        images = [m for m in archive.getmembers() if m.name.endswith(".jpg")]
        assert len(images) == 5  # max_images is a hard cap
        for member in images:
            file = archive.extractfile(member)
            assert file is not None and file.read(3) == b"\xff\xd8\xff"


def test_crawl_downloads_a_webdataset_export_into_a_folder_that_webdataset_reads(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    import webdataset as wds

    with HttpHost() as host:
        for seed in range(5):
            host.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 160, 120), headers=JPEG)
        urls = [arg for seed in range(5) for arg in ("--url", host.url(f"/{seed}.jpg"))]
        result = pixcrawler(
            "crawl", "birds", "--provider", "urls", *urls, "--format", "webdataset",
            "--data-dir", str(tmp_path / "state"), "--allow-loopback", "--quiet",
            env=clean_env, cwd=tmp_path, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "birds-webdataset"
    assert "5 exported" in result.stdout and str(folder) in result.stdout
    assert sorted(path.name for path in folder.iterdir()) == ["classes.txt", "croissant.json", "train-000000.tar"]
    assert (folder / "classes.txt").read_text() == "birds\n"
    read = list(wds.WebDataset([str(folder / "train-000000.tar")], shardshuffle=False).decode("pil"))
    assert len(read) == 5 and {sample["cls"] for sample in read} == {0}
    assert all(sample["jpg"].size == (160, 120) for sample in read)


def test_crawl_splits_the_export_into_an_image_folder_per_split(tmp_path: Path, clean_env: dict[str, str]) -> None:
    with HttpHost() as host:
        for seed in range(8):
            host.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 160, 120), headers=JPEG)
        urls = [arg for seed in range(8) for arg in ("--url", host.url(f"/{seed}.jpg"))]
        result = pixcrawler(
            "crawl", "birds", "--provider", "urls", *urls, "--splits", "train=0.75,test=0.25", "--split-seed", "3",
            "--output", "birds.zip", "--data-dir", str(tmp_path / "state"), "--allow-loopback", "--quiet",
            env=clean_env, cwd=tmp_path, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(tmp_path / "birds.zip") as archive:
        images = [name for name in archive.namelist() if name.endswith(".jpg")]
        counts = json.loads(archive.read("splits.json"))["counts"]
    per_split = {split: sum(name.startswith(f"{split}/birds/") for name in images) for split in ("test", "train")}
    assert len(images) == 8 and per_split["test"] >= 1 and per_split["train"] >= 1
    assert counts == {split: {"birds": count} for split, count in per_split.items()}
    assert f"splits: test {per_split['test']}, train {per_split['train']}" in result.stdout


def test_crawl_searches_a_provider_and_exports_by_keyword(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """Openverse's recorded answer, served from loopback, with its image URLs pointing at a loopback host."""
    page = json.loads((Path(__file__).parents[1] / "fixtures" / "providers" / "openverse_page.json").read_text())
    with HttpHost() as api, HttpHost() as images:
        for seed, result in enumerate(page["results"]):
            images.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 160, 120), headers=JPEG)
            result["url"] = images.url(f"/{seed}.jpg")
        api.routes["/v1/images/"] = Response(json.dumps(page).encode(), headers={"Content-Type": "application/json"})
        result = pixcrawler(
            "crawl", "cats", "--provider", "openverse", "--max-images", "4", "--output", "cats.zip",
            "--data-dir", str(tmp_path / "state"), "--allow-loopback", "--quiet",
            env={**clean_env, "OPENVERSE_URL": api.base_url}, cwd=tmp_path, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(tmp_path / "cats.zip") as archive:
        names = archive.namelist()
        assert sum(name.startswith("cats/") and name.endswith(".jpg") for name in names) == 4, names
        attribution = next(name for name in names if "attribution" in name.lower())
        assert "admiller" in archive.read(attribution).decode()


def test_ctrl_c_cancels_and_stops_cleanly(tmp_path: Path, clean_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    with HttpHost() as host:
        host.routes["/slow.jpg"] = Response(samples.jpeg(1), headers=JPEG, delay=8)
        process = subprocess.Popen(
            [PIXCRAWLER, "crawl", "slow", "--provider", "urls", "--url", host.url("/slow.jpg"), "--quiet",
             "--data-dir", str(state), "--allow-loopback"],
            env=clean_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while not host.requests and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)  # the crawl worker is now downloading
        assert host.requests, process.communicate()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not (state / "stack.json").exists()  # the stack shut down
    assert not (state / "postgres" / "postmaster.pid").exists()  # and stopped its database


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--urls-file", "missing.txt"], "missing.txt does not exist"),
        (["--urls-file", "folder"], "cannot read --urls-file folder"),
        (["--urls-file", "photo.bin"], "photo.bin is not a text file"),
        (["--urls-file", "empty.txt"], "empty.txt holds no URLs"),
        (["--provider", "urls", "--urls-file", "empty.txt"], "empty.txt holds no URLs"),
        (["--provider", "urls"], "--url URL (repeatable) or --urls-file FILE"),
    ],
)
def test_a_url_list_it_cannot_use_gets_one_sentence(
    arguments: list[str], named: str, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "photo.bin").write_bytes(samples.jpeg(1))
    (tmp_path / "empty.txt").write_text("\n  \n")
    result = pixcrawler("crawl", "birds", *arguments, "--quiet", env=clean_env, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("pixcrawler crawl: ") and result.stderr.count("\n") == 1, result.stderr
    assert named in result.stderr
    assert not (tmp_path / ".pixcrawler").exists()  # refused before any stack started


def test_loopback_urls_are_named_with_the_option_that_allows_them(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """Said before the stack starts; here the API port is the image host's own, so it stops right after."""
    with HttpHost() as host:
        host.routes["/a.jpg"] = Response(samples.jpeg(1), headers=JPEG)
        result = pixcrawler(
            "crawl", "birds", "--url", host.url("/a.jpg"), "--url", "https://example.org/b.jpg", "--quiet",
            "--data-dir", str(tmp_path / "state"), "--port", host.base_url.rsplit(":", 1)[1],
            env=clean_env, cwd=tmp_path,
        )  # fmt: skip
    first = result.stderr.splitlines()[0]
    assert first.startswith("pixcrawler crawl: 1 of the 2 URLs are on this machine (127.0.0.1:"), result.stderr
    assert "--allow-loopback" in first and "CRAWL_ALLOW_LOOPBACK=1" in first


def test_crawl_allow_loopback_in_the_environment_is_honoured(tmp_path: Path, clean_env: dict[str, str]) -> None:
    with HttpHost() as host:
        for seed in range(3):
            host.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 160, 120), headers=JPEG)
        result = pixcrawler(
            "crawl", "birds", *[arg for seed in range(3) for arg in ("--url", host.url(f"/{seed}.jpg"))],
            "--output", "birds.zip", "--data-dir", str(tmp_path / "state"), "--quiet",
            env={**clean_env, "CRAWL_ALLOW_LOOPBACK": "1"}, cwd=tmp_path, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 crawled" in result.stdout and "allow-loopback" not in result.stderr


def test_crawl_resize_flags_become_the_export_s_transform(tmp_path: Path, clean_env: dict[str, str]) -> None:
    with HttpHost() as host:
        for seed in range(3):
            host.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 160, 120), headers=JPEG)
        urls = [arg for seed in range(3) for arg in ("--url", host.url(f"/{seed}.jpg"))]
        result = pixcrawler(
            "crawl", "birds", "--provider", "urls", *urls, "--format", "tar", "--output", "birds.tar",
            "--image-size", "64", "--resize-mode", "center_crop", "--encode-format", "webp", "--encode-quality", "80",
            "--data-dir", str(tmp_path / "state"), "--allow-loopback", "--quiet",
            env=clean_env, cwd=tmp_path, timeout=180,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    with tarfile.open(tmp_path / "birds.tar") as archive:
        images = [member for member in archive.getmembers() if member.name.endswith(".webp")]
        assert len(images) == 3
        for member in images:
            file = archive.extractfile(member)
            assert file is not None
            with Image.open(file) as image:
                assert (image.format, image.mode, image.size) == ("WEBP", "RGB", (64, 64))
