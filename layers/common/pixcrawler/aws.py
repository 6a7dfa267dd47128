"""boto3 clients, created on first use and reused by warm invocations, and secret values.

Creating clients at import would cost every cold start ~0.3 s, including functions that never call AWS. Under
SnapStart, boto3 and the service models are loaded before the snapshot instead, and the session (which holds
the resolved credentials) and its clients are rebuilt after each restore; the parsed models are kept.
"""

from __future__ import annotations

import http.client
import json
import os
from contextlib import suppress
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from aws_lambda_powertools import Logger

from pixcrawler import snapstart
from pixcrawler.settings import get_settings

if TYPE_CHECKING:
    import boto3
    from botocore.loaders import Loader
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

EXTENSION_TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"

logger = Logger(child=True)


class SecretsExtensionError(Exception):
    """The Parameters and Secrets extension did not answer a secret; `str(error)` says what it answered."""


def region() -> str:
    """Lambda sets AWS_REGION; local runs may set only AWS_DEFAULT_REGION. Endpoints (`AWS_ENDPOINT_URL`,
    used by the local stack to reach moto's server) are read by boto3 itself."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@cache
def _loader() -> Loader:
    """Parsed service models and endpoint data: hold no credentials, so they outlive a restore (a session
    that must parse them again costs 100-200 ms, one that shares them 35-70 ms)."""
    from botocore.loaders import create_loader

    return create_loader()


@cache
def _session() -> boto3.Session:
    import boto3
    from botocore.session import get_session

    core = get_session()
    core.register_component("data_loader", _loader())
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return boto3.Session(botocore_session=core, region_name=region())


def _timestamp(value: str | float) -> datetime:
    """A timestamp of an AWS answer, as botocore's own parser reads it, without `dateutil` for ISO 8601: a
    listing's every object has a `LastModified`, and `dateutil.parser` took 0.55 s of the 0.85 s of CPU that
    listing 4,000 keys cost (a crawl job's orphan check at its end; 0.3 s with `datetime.fromisoformat`).
    Anything else (epoch numbers, RFC 822 dates) is botocore's."""
    from botocore.utils import parse_timestamp

    text = str(value)
    if "T" in text:
        with suppress(ValueError):
            return datetime.fromisoformat(text)
    parsed: datetime = parse_timestamp(text)
    return parsed


@cache
def s3() -> S3Client:
    from botocore.config import Config

    config = Config(signature_version="s3v4", max_pool_connections=32)
    return _session().client("s3", config=config)


@cache
def sqs() -> SQSClient:
    return _session().client("sqs")


@cache
def secretsmanager() -> SecretsManagerClient:
    return _session().client("secretsmanager")


def secret_string(secret_id: str) -> str:
    """A Secrets Manager secret's current string, through the AWS Parameters and Secrets Lambda Extension
    when it is configured (one HTTP GET on localhost, and no boto3 import on the cold path: about 230 ms less
    on the API's first request), else through boto3.

    The extension takes the function's AWS_SESSION_TOKEN as its key. SnapStart functions get container
    credentials and no such variable, so they read through boto3, whose models are loaded before the snapshot;
    an extension that refuses or is unreachable also falls back to boto3.
    """
    port = get_settings().parameters_secrets_extension_http_port
    token = os.environ.get("AWS_SESSION_TOKEN")
    if port and token:
        try:
            return _from_extension(port, token, secret_id)
        except (OSError, SecretsExtensionError) as error:
            logger.warning("Secrets extension failed, reading through boto3: %s", error)
    return secretsmanager().get_secret_value(SecretId=secret_id)["SecretString"]


def _from_extension(port: int, token: str, secret_id: str) -> str:
    connection = http.client.HTTPConnection("localhost", port, timeout=5)
    try:
        connection.request(
            "GET", f"/secretsmanager/get?secretId={quote(secret_id, safe='')}", headers={EXTENSION_TOKEN_HEADER: token}
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise SecretsExtensionError(f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
    try:
        value = json.loads(body)["SecretString"]
    except (ValueError, KeyError, TypeError) as error:
        raise SecretsExtensionError(f"no SecretString in its answer ({error!r})") from error
    if not isinstance(value, str):
        raise SecretsExtensionError("SecretString is not a string")
    return value


@snapstart.before_snapshot
def load_models() -> None:
    """Import boto3 and parse the models of the clients the functions build (~0.5 s) once, into the snapshot
    (and, in the local stack, while its database and emulator start)."""
    for client in (s3, sqs, secretsmanager):
        client()
    reset()


@snapstart.after_restore
def reset() -> None:
    """Forget the session, its credentials and the clients (after a restore; tests switch moto contexts)."""
    for cached in (_session, s3, sqs, secretsmanager):
        cached.cache_clear()
