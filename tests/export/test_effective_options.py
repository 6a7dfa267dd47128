"""An export reports the options it was actually made with, defaults resolved, not the `null` it was asked with."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler.models import JobStatus, ValidationJob
from tests import events, factories
from tests.api.conftest import invoke
from tests.export.conftest import deliver, export_job, reload


@pytest.mark.parametrize(
    ("requested", "validated", "used"), [(None, False, False), (None, True, True), (False, True, False)]
)
def test_the_export_job_shows_the_only_valid_it_used(
    requested: bool | None,
    validated: bool,
    used: bool,
    session: Session,
    env: dict[str, Any],
    export_app: ModuleType,
) -> None:
    job = factories.crawl_job(session)
    factories.stored_image(session, env["s3"], env["bucket"], job, seed=1, is_valid=True)
    if validated:
        session.add(ValidationJob(crawl_job_id=job.id, name="v", status=JobStatus.COMPLETED))
    export = export_job(session, job, "jsonl", only_valid=requested)

    deliver(export_app, export.id)

    assert reload(session, export).status is JobStatus.COMPLETED
    reply = invoke(events.http_event("GET", f"/v1/export-jobs/{export.id}", user=job.project.user_id))
    assert reply.status == 200 and reply.json["export_options"]["only_valid"] is used
