"""`splits` and `split_seed` in an export request: bad values answer 422 naming the field and store nothing;
good ones are stored as given, and the job shows its counts per split and label."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pixcrawler.models import ExportJob
from tests import factories
from tests.api.conftest import Call

SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"splits": {}}, "options.splits", "give 1 to 10 splits"),
        ({"splits": {f"s{n}": 0.09 for n in range(11)}}, "options.splits", "give 1 to 10 splits"),
        ({"splits": {"train": 0.5, "Train": 0.5}}, "options.splits", "differ only in letter case"),
        ({"splits": {"../train": 1}}, "options.splits", "split name '../train' must be"),
        ({"splits": {"train/x": 1}}, "options.splits", "split name 'train/x' must be"),
        ({"splits": {"NUL": 1}}, "options.splits", "Windows device name"),
        ({"splits": {"": 1}}, "options.splits", "split name '' must be"),
        ({"splits": {"train": 0.9, "test": 0.2}}, "options.splits", "sum to 1.1"),
        ({"splits": {"train": 0.8, "test": 0.1}}, "options.splits", "sum to 0.9"),
        ({"splits": {"train": 1.5, "test": -0.5}}, "options.splits", "above 0"),
        ({"splits": {"train": 1, "test": 0}}, "options.splits", "above 0"),
        ({"splits": {"train": "most"}}, "options.splits.train", "valid number"),
        ({"splits": ["train", "test"]}, "options.splits", "valid dictionary"),
        ({"splits": SPLITS, "split_seed": -1}, "options.split_seed", "greater than or equal to 0"),
        ({"splits": SPLITS, "split_seed": 2**63}, "options.split_seed", "less than or equal to"),
        ({"splits": SPLITS, "split_seed": "seven"}, "options.split_seed", "valid integer"),
    ],
)
def test_bad_splits_answer_422_naming_the_field(
    api: Call, session: Session, alice: uuid.UUID, options: dict[str, Any], field: str, says: str
) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    body = {"name": "e", "options": options}
    reply = api("POST", f"/v1/crawl-jobs/{job.id}/export-jobs", user=alice, body=body)
    assert reply.status == 422, reply.text
    details = {detail["field"]: detail["message"] for detail in reply.error["details"]}
    assert field in details and says in details[field], details
    assert session.scalar(select(func.count()).select_from(ExportJob)) == 0


def test_splits_are_stored_and_the_response_shows_no_counts_before_the_export_starts(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    body = {"name": "e", "options": {"splits": SPLITS, "split_seed": 42}}
    reply = api("POST", f"/v1/crawl-jobs/{job.id}/export-jobs", user=alice, body=body)
    assert reply.status == 202, reply.text
    assert reply.json["export_options"]["splits"] == SPLITS and reply.json["export_options"]["split_seed"] == 42
    assert reply.json["split_counts"] is None
    row = session.get(ExportJob, reply.json["id"])
    assert row is not None and row.export_options["splits"] == SPLITS
