"""The CLI's progress bars end where the jobs ended, against a canned API served over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pixcrawler_local.client import Client
from pixcrawler_local.httphost import HttpHost, Response
from pixcrawler_local.pipeline import DatasetRequest, Pipeline


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def test_a_crawl_of_fewer_urls_than_max_images_ends_its_bar_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with HttpHost() as api:
        api.routes.update(
            {
                "/v1/projects": _json({"id": 1}),
                "/v1/projects/1/crawl-jobs": _json({"id": 7}),
                "/v1/crawl-jobs/7": _json(
                    {"id": 7, "status": "completed", "max_images": 100, "total_images": 30, "downloaded_images": 30}
                ),
                "/v1/crawl-jobs/7/validation-jobs": _json({"id": 8}),
                "/v1/validation-jobs/8": _json(
                    {"id": 8, "status": "completed", "total_images": 30, "validated_images": 30}
                ),
                "/v1/crawl-jobs/7/export-jobs": _json({"id": 9}),
                "/v1/export-jobs/9": _json(
                    {
                        "id": 9,
                        "status": "completed",
                        "total_images": 30,
                        "exported_images": 30,
                        "file_size": 4,
                        "download_url": api.url("/archive.zip"),
                    }
                ),
                "/archive.zip": Response(b"PK\x05\x06"),
            }
        )
        request = DatasetRequest("birds", ["birds"], ["urls"], 100, tmp_path / "birds.zip", urls=["http://x/a.jpg"])
        Pipeline(Client(api.base_url), progress=True).run(request)

    crawl_bar = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.startswith("crawl")]
    assert crawl_bar and "30/30" in crawl_bar[-1] and "/100" not in crawl_bar[-1], crawl_bar
