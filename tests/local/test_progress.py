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
    assert request.urls == [], "the crawl job holds the URLs; the run keeps no copy of them"

    crawl_bar = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.startswith("crawl")]
    assert crawl_bar and "30/30" in crawl_bar[-1] and "/100" not in crawl_bar[-1], crawl_bar


def _canned_export(api: HttpHost, files: list[dict[str, Any]]) -> None:
    api.routes.update(
        {
            "/v1/projects": _json({"id": 1}),
            "/v1/projects/1/crawl-jobs": _json({"id": 7}),
            "/v1/crawl-jobs/7": _json({"id": 7, "status": "completed", "max_images": 2, "downloaded_images": 2}),
            "/v1/crawl-jobs/7/validation-jobs": _json({"id": 8}),
            "/v1/validation-jobs/8": _json({"id": 8, "status": "completed", "total_images": 2, "validated_images": 2}),
            "/v1/crawl-jobs/7/export-jobs": _json({"id": 9}),
            "/v1/export-jobs/9": _json(
                {
                    "id": 9,
                    "status": "completed",
                    "total_images": 2,
                    "exported_images": 2,
                    "file_size": files[0]["size"],
                    "download_url": files[0]["download_url"],
                    "files": files,
                }
            ),
        }
    )


def test_a_document_export_downloads_to_its_file_and_a_webdataset_export_to_a_folder(tmp_path: Path) -> None:
    with HttpHost() as api:
        bodies = {"birds.csv": b"a,b\n", "croissant.json": b"{}", "train-000000.tar": b"tar", "classes.txt": b"x\n"}
        for name, body in bodies.items():
            api.routes[f"/{name}"] = Response(body)
        listed = [{"name": name, "size": len(bodies[name]), "download_url": api.url(f"/{name}")} for name in bodies]
        _canned_export(api, listed[:2])
        document = DatasetRequest("birds", ["birds"], ["urls"], 2, tmp_path / "birds.csv", export_format="csv")
        Pipeline(Client(api.base_url), progress=False).run(document)
        _canned_export(api, listed[2:] + listed[1:2])
        shards = DatasetRequest("birds", ["birds"], ["urls"], 2, tmp_path / "wds", export_format="webdataset")
        Pipeline(Client(api.base_url), progress=False).run(shards)

    assert (tmp_path / "birds.csv").read_bytes() == b"a,b\n"
    assert {path.name: path.read_bytes() for path in (tmp_path / "wds").iterdir()} == {
        "train-000000.tar": b"tar",
        "classes.txt": b"x\n",
        "croissant.json": b"{}",
    }
