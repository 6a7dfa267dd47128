"""Drive the API function's `lambda_handler` with real HTTP API events, over real PostgreSQL and moto."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler import db
from pixcrawler.settings import get_settings
from tests import events
from tests.conftest import load_function

api_function = load_function("api")
CALLERS = 10
"""How many concurrent callers the race tests release at once."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, Any]:
        body = self.json
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"status", "code", "message", "details"}, body
        assert body["error"]["status"] == self.status
        return body["error"]


Call = Callable[..., Reply]


def invoke(event: dict[str, Any]) -> Reply:
    response = api_function.lambda_handler(event, events.lambda_context("api"))
    return Reply(response["statusCode"], response.get("headers") or {}, response.get("body") or "")


@pytest.fixture
def api(session: Session, request: pytest.FixtureRequest) -> Call:
    """`api(method, path, user=..., body=..., query=...)` -> Reply. Tests that reach S3 or SQS also ask for `aws`.

    The test's session commits first (the API sees what the test arranged, and the one pooled connection is
    free) and forgets its cached rows after, so assertions read what the API stored.
    """
    request.getfixturevalue("link_secret")

    def call(method: str, path: str, **kwargs: Any) -> Reply:
        session.commit()
        try:
            return invoke(events.http_event(method, path, **kwargs))
        finally:
            session.expire_all()

    return call


@pytest.fixture
def alice() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def bob() -> uuid.UUID:
    return uuid.uuid4()


def queued(aws: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Every message waiting on a work queue (received, so each is seen once)."""
    bodies: list[dict[str, Any]] = []
    while batch := aws["sqs"].receive_message(QueueUrl=aws["queues"][name], MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(message["Body"]) for message in batch]
    return bodies


@pytest.fixture
def wide_pool(session: Session) -> Iterator[None]:
    """A pool with a connection per caller (plus the test's own), as that many Lambda environments would have."""
    previous = os.environ.get("DB_POOL_SIZE")
    os.environ["DB_POOL_SIZE"] = str(CALLERS + 2)
    get_settings.cache_clear()
    db.reset()
    db.get_engine()
    yield
    if previous is None:
        os.environ.pop("DB_POOL_SIZE", None)
    else:
        os.environ["DB_POOL_SIZE"] = previous
    get_settings.cache_clear()
    db.reset()
