"""One dataset, start to finish, through the API: project, crawl, validation, export, download.

Shared by `pixcrawler demo` and `pixcrawler crawl`; each stage shows a progress bar (tqdm) fed by the
job's own counters, and a failed stage stops the run with the job's error message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pixcrawler.schemas.export import ExportFormat
from pixcrawler_local.client import Client, download


class StageFailed(RuntimeError):
    def __init__(self, stage: str, job: dict[str, Any]) -> None:
        super().__init__(
            f"{stage} job {job.get('id')} ended {job.get('status')}: {job.get('error_message') or 'no reason given'}"
        )
        self.stage, self.job = stage, job


@dataclass
class DatasetRequest:
    name: str
    keywords: list[str]
    providers: list[str]
    max_images: int
    output: Path
    """The archive's path, or for WebDataset the folder that receives every file the export lists."""
    urls: list[str] | None = None
    """Handed over: the run empties the list once the crawl job holds the URLs, so that the CLI's process does
    not keep them to its end (100,000 URLs of 40-80 characters are 9-22 MiB of Python objects)."""
    rules: dict[str, Any] = field(default_factory=dict)
    export_format: str = "zip"
    export_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    crawl: dict[str, Any]
    validation: dict[str, Any]
    export: dict[str, Any]
    archive: Path
    archive_size: int
    elapsed: float
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds from each stage's request to its observed end (crawl, validate, export, download), so a user
    and `benchmarks/pipeline.py` see where the time went."""


class Pipeline:
    def __init__(self, client: Client, progress: bool = True, timeout: float | None = None) -> None:
        self.client, self.progress, self.timeout = client, progress, timeout
        self.current: dict[str, Any] | None = None  # the crawl job, so an interrupted run can cancel it

    def _stage(self, label: str, path: str, total_of: str, done_of: str, unit: str = "img") -> dict[str, Any]:
        with tqdm(desc=f"{label:<9}", unit=unit, disable=not self.progress, leave=True) as bar:

            def update(job: dict[str, Any]) -> None:
                # a completed job reached its real total, which can be less than the goal (30 URLs, 100 max)
                total = (job.get(done_of) if job["status"] == "completed" else job.get(total_of)) or None
                if total != bar.total:
                    bar.total = total
                bar.n = job.get(done_of) or 0
                bar.set_postfix_str(job["status"], refresh=False)
                bar.refresh()

            job = self.client.wait(path, update, timeout=self.timeout)
        if job["status"] != "completed":
            raise StageFailed(label, job)
        return job

    def run(self, request: DatasetRequest) -> Outcome:
        started = time.monotonic()
        stages: dict[str, float] = {}
        client = self.client
        project = client.post("/v1/projects", {"name": request.name})
        body: dict[str, Any] = {
            "name": request.name,
            "keywords": request.keywords,
            "max_images": request.max_images,
            "providers": request.providers,
        }
        if request.urls:
            body["urls"] = request.urls
        self.current = client.post(f"/v1/projects/{project['id']}/crawl-jobs", body)
        if request.urls:
            request.urls.clear()
        crawl_id = self.current["id"]
        crawl = self._stage("crawl", f"/v1/crawl-jobs/{crawl_id}", "max_images", "downloaded_images")
        self.current = None
        stages["crawl"], mark = time.monotonic() - started, time.monotonic()
        validation = client.post(
            f"/v1/crawl-jobs/{crawl_id}/validation-jobs", {"name": request.name, "rules": request.rules}
        )
        validation = self._stage(
            "validate", f"/v1/validation-jobs/{validation['id']}", "total_images", "validated_images"
        )
        stages["validate"], mark = time.monotonic() - mark, time.monotonic()
        export = client.post(
            f"/v1/crawl-jobs/{crawl_id}/export-jobs",
            {"name": request.name, "format": request.export_format, "options": request.export_options},
        )
        export = self._stage("export", f"/v1/export-jobs/{export['id']}", "total_images", "exported_images")
        stages["export"], mark = time.monotonic() - mark, time.monotonic()
        files = export.get("files") or []
        folder = request.export_format == ExportFormat.WEBDATASET
        total = sum(file["size"] for file in files) if folder else export.get("file_size")
        with tqdm(desc=f"{'download':<9}", unit="B", unit_scale=True, total=total, disable=not self.progress) as bar:
            if folder:  # every shard, classes.txt and croissant.json into the output folder
                size = sum(
                    download(file["download_url"], request.output / Path(file["name"]).name, bar.update)
                    for file in files
                )
            else:
                size = download(export["download_url"], request.output, bar.update)
        stages["download"] = time.monotonic() - mark
        return Outcome(crawl, validation, export, request.output, size, time.monotonic() - started, stages)

    def cancel(self) -> None:
        """Best effort, on Ctrl-C: stop the crawl job so no worker keeps downloading for it."""
        if self.current is not None:
            self.client.post(f"/v1/crawl-jobs/{self.current['id']}/cancel", {})
