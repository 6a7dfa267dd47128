"""The export function's CloudWatch metrics: bytes, images and duration of a completed export, failed exports."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.export.conftest import deliver, export_job, reload
from tests.export.test_lifecycle import images
from tests.metrics import enable_metrics, named, printed_metrics


def test_a_completed_export_prints_its_bytes_images_and_duration(
    session: Session,
    env: dict[str, Any],
    export_app: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job, _ = images(session, env, 4)
    export = export_job(session, job, "zip")
    enable_metrics(monkeypatch, "export")
    assert deliver(export_app, export.id) == {"batchItemFailures": []}
    done = reload(session, export)
    metrics = printed_metrics(capsys.readouterr().out)
    assert done.file_size and done.file_size > 0
    assert named(metrics, "BytesExported") == [("BytesExported", float(done.file_size), {"service": "export"})]
    assert named(metrics, "ImagesExported") == [("ImagesExported", 4.0, {"service": "export"})]
    [(_, seconds, _)] = named(metrics, "ExportDuration")
    assert seconds >= 0
