"""SnapStart: what init leaves in memory is reset in every restored environment, secrets come from the
Parameters and Secrets extension when it is there, and the API is compiled into the snapshot.

The hooks run as Lambda's Python runtime runs them (tests/snapstart.py); the extension is a real HTTP server on
loopback that answers as the AWS one does (tests/secrets_extension.py)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from sqlalchemy import Engine, text

from pixcrawler import aws as pixcrawler_aws
from pixcrawler import db, links, transfers
from pixcrawler.api import app as api_app  # noqa: F401  (registers the API's before-snapshot hook)
from pixcrawler.api.routes import system
from pixcrawler.providers import openverse
from pixcrawler.settings import get_settings
from tests.conftest import ROOT
from tests.secrets_extension import Extension, serving
from tests.snapstart import restore, take_snapshot

SESSION_TOKEN = "session-token-of-this-environment"


@pytest.fixture
def extension(monkeypatch: pytest.MonkeyPatch) -> Iterator[Extension]:
    with serving(SESSION_TOKEN) as served:
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(served.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
        get_settings.cache_clear()
        yield served
    get_settings.cache_clear()


def secrets_manager_secret(name: str, value: str) -> str:
    return boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]


def test_secrets_come_from_the_extension_with_the_session_token(aws: Any, extension: Extension) -> None:
    arn = secrets_manager_secret("key", "from secrets manager")
    extension.secrets[arn] = "from the extension"
    assert pixcrawler_aws.secret_string(arn) == "from the extension"
    assert extension.tokens == [SESSION_TOKEN]


def test_without_the_extension_secrets_come_from_secrets_manager(aws: Any) -> None:
    assert pixcrawler_aws.secret_string(secrets_manager_secret("key", "from secrets manager")) == "from secrets manager"


def test_snapstart_environments_without_a_session_token_read_through_boto3(
    aws: Any, extension: Extension, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SnapStart functions get container credentials, not AWS_SESSION_TOKEN: the extension would refuse them."""
    arn = secrets_manager_secret("key", "from secrets manager")
    extension.secrets[arn] = "from the extension"
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    assert pixcrawler_aws.secret_string(arn) == "from secrets manager"
    assert extension.tokens == []


def test_an_extension_that_refuses_falls_back_to_secrets_manager(aws: Any, extension: Extension) -> None:
    arn = secrets_manager_secret("key", "from secrets manager")
    assert pixcrawler_aws.secret_string(arn) == "from secrets manager"  # the extension answered 400: not found
    assert extension.tokens == [SESSION_TOKEN]


@pytest.fixture
def from_secret(monkeypatch: pytest.MonkeyPatch, migrated: str) -> Iterator[None]:
    """The database and the link key named by ARNs only, as deployed."""
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("DOWNLOAD_LINK_SECRET", raising=False)
    get_settings.cache_clear()
    db.reset()
    links._secret.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    db.reset()
    links._secret.cache_clear()


def test_secrets_rotated_while_the_snapshot_waited_are_read_again_after_restore(
    extension: Extension, from_secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"
    key_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:links"
    rds = {"username": "app", "host": "db.internal", "port": 5432, "dbname": "pix"}
    extension.secrets |= {db_arn: json.dumps(rds | {"password": "before"}), key_arn: "key before"}
    monkeypatch.setenv("DB_SECRET_ARN", db_arn)
    monkeypatch.setenv("DOWNLOAD_LINK_SECRET_ARN", key_arn)
    get_settings.cache_clear()
    assert db.get_engine().url.password == "before"
    token = links.sign(7, datetime.now(UTC) + timedelta(hours=1))
    assert links.verify(token) == 7

    take_snapshot()
    extension.secrets |= {db_arn: json.dumps(rds | {"password": "after"}), key_arn: "key after"}
    restore()

    assert db.get_engine().url.password == "after"
    with pytest.raises(links.LinkError):
        links.verify(token)
    assert links.verify(links.sign(7, datetime.now(UTC) + timedelta(hours=1))) == 7


def backends(engine: Engine) -> tuple[int, set[int]]:
    """This connection's backend, and every client backend of the database (this one included)."""
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        others = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend'"
            )
        ).scalars()
        return pid, set(others)


def test_a_restored_environment_opens_its_own_database_connection(engine: Engine) -> None:
    before, _ = backends(engine)
    take_snapshot()
    restore()
    after, connected = backends(db.get_engine())
    assert db.get_engine() is not engine
    assert after != before
    assert before not in connected  # closed before the snapshot: no socket in it


def presigned_key_id(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Credential"][0].split("/")[0]


def test_aws_clients_are_rebuilt_with_the_restored_environments_credentials(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"Bucket": aws["bucket"], "Key": "k"}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "SNAPSHOTKEY")
    assert presigned_key_id(pixcrawler_aws.s3().generate_presigned_url("get_object", Params=params)) == "SNAPSHOTKEY"
    crt = transfers._client(False, "127.0.0.1:9")

    take_snapshot()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "RESTOREKEY")
    restore()

    assert presigned_key_id(pixcrawler_aws.s3().generate_presigned_url("get_object", Params=params)) == "RESTOREKEY"
    assert transfers._client(False, "127.0.0.1:9") is not crt


def test_environments_restored_from_one_snapshot_draw_different_random_numbers() -> None:
    take_snapshot()
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)  # each environment resumes from the same memory
        restore()
        draws.append([random.random() for _ in range(4)])
    assert draws[0] != draws[1]


def test_a_provider_token_fetched_before_the_snapshot_is_not_reused() -> None:
    openverse._token.update(value="token of the snapshot", expires=float("inf"))
    take_snapshot()
    restore()
    assert openverse._token == {}


def test_the_api_is_compiled_into_the_snapshot() -> None:
    """Every route's models are built by the OpenAPI document; the docs page is ready too."""
    for compiled in (system.openapi_json, system.swagger_html):
        compiled.cache_clear()
    take_snapshot()
    restore()
    assert system.openapi_json.cache_info().currsize == system.swagger_html.cache_info().currsize == 1


def test_pillow_loads_its_format_plugins_into_the_snapshot() -> None:
    """In a fresh interpreter, as a worker's init leaves it: Pillow has registered only its five core formats."""
    script = (
        "from PIL import Image; import pixcrawler.validation.rules; from tests.snapstart import take_snapshot;"
        "before = 'TIFF' in Image.OPEN; take_snapshot(); print(before, 'TIFF' in Image.OPEN)"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert output.stdout.split() == ["False", "True"]
