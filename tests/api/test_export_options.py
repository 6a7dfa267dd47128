"""Export transform options: a bad combination is a 422 naming the option to change, and nothing is stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pixcrawler.models import ExportJob
from tests import factories
from tests.api.conftest import Call


@pytest.mark.parametrize(
    ("fmt", "options", "field"),
    [
        ("zip", {"resize_mode": "center_crop"}, "options.image_size"),
        ("zip", {"image_size": 256}, "options.resize_mode"),
        ("zip", {"image_size": 8, "resize_mode": "border"}, "options.image_size"),
        ("zip", {"image_size": 9000, "resize_mode": "border"}, "options.image_size"),
        ("zip", {"resize_mode": "stretch", "image_size": 64}, "options.resize_mode"),
        ("zip", {"encode_format": "gif"}, "options.encode_format"),
        ("zip", {"encode_format": "jpeg", "encode_quality": 0}, "options.encode_quality"),
        ("csv", {"image_size": 64, "resize_mode": "keep_ratio"}, "options.resize_mode"),
        ("jsonl", {"encode_format": "webp"}, "options.encode_format"),
    ],
)
def test_a_bad_transform_is_422_naming_the_option(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID, fmt: str, options: dict[str, Any], field: str
) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))

    reply = api(
        "POST",
        f"/v1/crawl-jobs/{job.id}/export-jobs",
        user=alice,
        body={"name": "x", "format": fmt, "options": options},
    )

    assert reply.status == 422, reply.text
    assert field in [detail["field"] for detail in reply.error["details"]], reply.error
    assert session.scalar(select(func.count()).select_from(ExportJob)) == 0


def test_a_transform_is_stored_with_the_export(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    options = {"image_size": 256, "resize_mode": "center_crop", "encode_format": "webp", "encode_quality": 80}

    reply = api(
        "POST",
        f"/v1/crawl-jobs/{job.id}/export-jobs",
        user=alice,
        body={"name": "x", "format": "tar", "options": options},
    )

    assert reply.status == 202, reply.text
    stored = reply.json["export_options"]
    assert {key: stored[key] for key in options} == options and stored["resize_only_if_bigger"] is False
