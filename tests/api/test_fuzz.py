"""Property-based fuzz of every operation the served OpenAPI document declares, by schemathesis over real HTTP.

The local stack's gateway turns each HTTP request into the API Gateway v2 event the API function receives, with
the claims of a token the gateway verified, so protected operations are reached. Positive and negative cases,
undeclared content types included (schemathesis' coverage phase), must never answer 5xx and must answer what
the document declares, status code and body. The data and the generation are fixed (seeded rows, derandomized
Hypothesis, which keeps no example database, one worker), so a run is the same on every machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pixcrawler import links, object_keys
from pixcrawler.models import ExportJob, JobStatus, ValidationJob
from pixcrawler_local import tokens
from pixcrawler_local.functions import Function
from pixcrawler_local.gateway import Gateway, serve
from tests import factories
from tests.conftest import ROOT

TOKEN_SECRET = "fuzz-token-secret-of-at-least-32-bytes"
EMAIL = "fuzz@example.com"
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
MAX_EXAMPLES = 8
SEEDED = 1000
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def seed_rows(engine: Engine, aws: dict[str, Any]) -> None:
    """One of everything the token's user can reach, at ids the coverage phase's boundary values (1, 2**31 - 1)
    never pick and the rows the API creates during the run never reach; project 1001 and image 1002 are there to
    be deleted (see `config`)."""
    with Session(engine) as session, session.begin():
        owner = factories.profile(session, id=tokens.user_id(EMAIL), email=EMAIL)
        project = factories.project(session, owner, id=SEEDED, name="birds")
        factories.project(session, owner, id=SEEDED + 1, name="doomed")
        job = factories.crawl_job(session, project, id=SEEDED)
        for offset in range(3):
            factories.stored_image(session, aws["s3"], aws["bucket"], job, seed=offset, id=SEEDED + offset)
        session.add(ValidationJob(id=SEEDED, crawl_job=job, name="v", status=JobStatus.COMPLETED))
        key = object_keys.export_key(job.project_id, SEEDED, "birds.zip")
        aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=b"PK archive")
        session.add(
            ExportJob(
                id=SEEDED,
                crawl_job=job,
                user_id=owner.id,
                name="e",
                format="zip",
                status=JobStatus.COMPLETED,
                storage_key=key,
                export_options={"link_lifetime_hours": 24},
            )
        )


@pytest.fixture
def served_api(engine: Engine, aws: dict[str, Any], link_secret: None) -> Iterator[str]:
    """The API function behind the local gateway, on a free port of 127.0.0.1."""
    seed_rows(engine, aws)
    api = Function.from_repository(ROOT, "api", timeout_seconds=30)
    server = serve(Gateway(api.invoke, TOKEN_SECRET), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def config(token: str) -> str:
    """schemathesis.toml: the seeded ids (and a valid download token) stand for half of the generated values, so
    operations reach their real work and not only 404s; deletes get rows nothing else needs."""
    known: dict[str, list[Any]] = {
        "project_id": [SEEDED],
        "crawl_job_id": [SEEDED],
        "image_id": [SEEDED, SEEDED + 1],
        "validation_job_id": [SEEDED],
        "export_job_id": [SEEDED],
        "token": [links.sign(SEEDED, datetime.now(UTC) + timedelta(hours=1))],
    }
    doomed = {
        "/v1/projects/{project_id}": ("project_id", [SEEDED + 1]),
        "/v1/images/{image_id}": ("image_id", [SEEDED + 2]),
    }
    lines = [f"headers = {{ Authorization = {json.dumps('Bearer ' + token)} }}", "", "[dictionaries]"]
    lines += [f"{name} = {{ values = {json.dumps(values)} }}" for name, values in known.items()]
    lines += [f"doomed_{name} = {{ values = {json.dumps(values)} }}" for name, values in doomed.values()]
    lines += ["", "[parameters]"]
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in known]
    for path, (name, _) in doomed.items():
        lines += ["", "[[operations]]", f'include-path = "{path}"', 'include-method = "DELETE"']
        lines += [f'parameters = {{ "path.{name}" = {{ dictionary = "doomed_{name}", probability = 0.5 }} }}']
    return "\n".join(lines) + "\n"


def test_every_operation_answers_as_documented(served_api: str, tmp_path: Path) -> None:
    """schemathesis' own command line, as a CI job would run it; its report is the failure message."""
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(config(tokens.mint(TOKEN_SECRET, EMAIL)))
    run = subprocess.run(
        [
            str(SCHEMATHESIS), "--config-file", str(settings), "run", f"{served_api}/v1/openapi.json",
            "--checks", CHECKS,
            "--phases", "examples,coverage,fuzzing",
            "--mode", "all",
            "--max-examples", str(MAX_EXAMPLES),
            "--generation-deterministic",
            "--workers", "1",
            "--continue-on-failure",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
