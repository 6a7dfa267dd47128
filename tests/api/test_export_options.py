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
    ("fmt", "options", "field", "says"),
    [
        ("zip", {"resize_mode": "center_crop"}, "options.image_size", "required when resize_mode is 'center_crop'"),
        ("zip", {"image_size": 256}, "options.resize_mode", "image_size needs a resize_mode"),
        ("zip", {"image_size": 8, "resize_mode": "border"}, "options.image_size", "greater than or equal to 16"),
        ("zip", {"image_size": 9000, "resize_mode": "border"}, "options.image_size", "less than or equal to 8192"),
        ("zip", {"resize_mode": "stretch", "image_size": 64}, "options.resize_mode", "'keep_ratio_largest'"),
        ("zip", {"encode_format": "gif"}, "options.encode_format", "'webp'"),
        ("zip", {"encode_format": "jpeg", "encode_quality": 0}, "options.encode_quality", "greater than or equal to 1"),
        ("csv", {"image_size": 64, "resize_mode": "keep_ratio"}, "options.resize_mode", "links the stored originals"),
        ("jsonl", {"encode_format": "webp"}, "options.encode_format", "links the stored originals"),
    ],
)
def test_a_bad_transform_is_422_naming_the_option(
    api: Call,
    session: Session,
    aws: dict[str, Any],
    alice: uuid.UUID,
    fmt: str,
    options: dict[str, Any],
    field: str,
    says: str,
) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))

    reply = api(
        "POST",
        f"/v1/crawl-jobs/{job.id}/export-jobs",
        user=alice,
        body={"name": "x", "format": fmt, "options": options},
    )

    assert reply.status == 422, reply.text
    assert [detail["field"] for detail in reply.error["details"]] == [field], reply.error
    assert says in reply.error["details"][0]["message"]
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
    assert {key: stored[key] for key in options} == options
    assert "resize_only_if_bigger" not in stored  # options added since exports first shipped: shown only when set
