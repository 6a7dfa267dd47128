"""`pixcrawler demo` on a clean machine: the README's main job, checked by opening what it produced."""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from PIL import Image

from pixcrawler_local.demo import DISTINCT_IMAGES
from tests.e2e.conftest import pixcrawler


def test_the_demo_runs_offline_and_produces_a_dataset(tmp_path: Path, clean_env: dict[str, str]) -> None:
    result = pixcrawler("demo", "--quiet", env=clean_env, cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr

    match = re.search(r"archive\s+(\S+)", result.stdout)
    assert match, result.stdout
    archive = Path(match.group(1))
    try:
        _check(archive, result.stdout)
    finally:
        shutil.rmtree(archive.parent, ignore_errors=True)


def _check(archive: Path, stdout: str) -> None:
    assert archive.is_file() and archive.parent.name.startswith("pixcrawler-demo-")  # a fresh temp dir
    assert re.search(r"crawled\s+\d+ images", stdout) and re.search(r"valid\s+\d+", stdout)
    assert "refused by the crawler: 1 HTTP error status, 1 not an image" in stdout, stdout
    assert re.search(r"finished in [\d.]+ s", stdout)

    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        manifests = [name for name in names if "manifest" in name.lower()]
        images = [name for name in names if name.lower().endswith((".jpg", ".jpeg"))]
        assert manifests, names
        # the distinct pictures survive; the near-copy, the thumbnail and the truncated file do not
        assert len(images) == DISTINCT_IMAGES, names
        for name in images:
            data = bundle.read(name)
            assert data[:3] == b"\xff\xd8\xff"
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()
                assert picture.format == "JPEG" and picture.size == (320, 240)
    assert f"exported  {DISTINCT_IMAGES} images" in stdout
    assert [path.name for path in archive.parent.iterdir()] == [archive.name]  # only the archive is kept


def test_the_demo_refuses_a_port_in_use_with_a_sentence(tmp_path: Path, clean_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = set(Path(tempfile.gettempdir()).glob("pixcrawler-demo-*"))
        result = pixcrawler("demo", "--port", str(port), env=clean_env, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert set(Path(tempfile.gettempdir()).glob("pixcrawler-demo-*")) == before  # nothing left behind
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
