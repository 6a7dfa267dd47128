"""Download links that live exactly as long as advertised.

A presigned S3 URL dies with the temporary credentials that signed it (a Lambda role's last hours), so a
7-day promise cannot be a raw presigned URL. Instead we hand out `/v1/downloads/{token}` on our API: the
token is an HMAC over the export id, the expiry instant and, for an export of several objects, which one
(its index in the export's `files`; absent means the first, so links issued before exports had several objects
keep working), and the route answers with a redirect to a
fresh presigned URL valid for a few minutes. Nothing is stored per link; rotating the secret revokes all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pixcrawler import aws, snapstart
from pixcrawler.settings import get_settings

REDIRECT_LIFETIME = timedelta(minutes=5)
DOWNLOAD_PATH = "/v1/downloads/"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")  # base64url payload "." base64url signature


class LinkError(Exception):
    status = 403
    code = "invalid_link"


class LinkInvalid(LinkError):
    """Tampered, truncated or signed with another secret."""


class LinkExpired(LinkError):
    status = 410
    code = "link_expired"


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    expires_at: datetime


@cache
def _secret() -> bytes:
    settings = get_settings()
    if settings.download_link_secret:
        return settings.download_link_secret.encode()
    if settings.download_link_secret_arn:
        return aws.secret_string(settings.download_link_secret_arn).encode()
    raise RuntimeError("Set DOWNLOAD_LINK_SECRET or DOWNLOAD_LINK_SECRET_ARN to issue download links")


snapstart.after_restore(_secret.cache_clear)
"""A key rotated while the snapshot waited is read again."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: str) -> str:
    return _b64(hmac.new(_secret(), payload.encode(), hashlib.sha256).digest())


def sign(export_job_id: int, expires_at: datetime, file: int = 0) -> str:
    claims = {"e": export_job_id, "x": int(expires_at.timestamp())} | ({"f": file} if file else {})
    payload = _b64(json.dumps(claims).encode())
    return f"{payload}.{_signature(payload)}"


def verify(token: str, now: datetime | None = None) -> int:
    """The export id the token grants, or LinkInvalid / LinkExpired."""
    return verify_file(token, now)[0]


def verify_file(token: str, now: datetime | None = None) -> tuple[int, int]:
    """The export id and the index of the file the token grants, or LinkInvalid / LinkExpired."""
    if not _TOKEN_SHAPE.fullmatch(token):  # before any decoding: a path may carry any character
        raise LinkInvalid("This download link is not valid.")
    payload, _, signature = token.partition(".")
    if not hmac.compare_digest(signature, _signature(payload)):
        raise LinkInvalid("This download link is not valid.")
    try:
        claims = json.loads(_unb64(payload))
        export_job_id, expiry, file = int(claims["e"]), int(claims["x"]), int(claims.get("f", 0))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise LinkInvalid("This download link is not valid.") from error
    if (now or datetime.now(UTC)).timestamp() >= expiry:
        raise LinkExpired("This download link has expired; ask for a fresh one.")
    return export_job_id, file


def issue(export_job_id: int, lifetime: timedelta, now: datetime | None = None, file: int = 0) -> Link:
    """A link to our API valid for `lifetime` (whole seconds, so `expires_at` matches the token exactly), to
    the export's file number `file`."""
    expires_at = ((now or datetime.now(UTC)) + lifetime).replace(microsecond=0)
    base = get_settings().public_api_url.rstrip("/")
    return Link(url=f"{base}{DOWNLOAD_PATH}{sign(export_job_id, expires_at, file)}", expires_at=expires_at)


def issue_all(
    export_job_id: int, files: list[dict[str, Any]], lifetime: timedelta
) -> tuple[Link, list[dict[str, Any]]]:
    """Links to every file of an export, expiring together: the first file's link and the files with theirs."""
    now = datetime.now(UTC)
    issued = [issue(export_job_id, lifetime, now, index) for index in range(max(len(files), 1))]
    return issued[0], [{**file, "download_url": link.url} for file, link in zip(files, issued, strict=False)]


def presigned_get(key: str, lifetime: timedelta, attachment: str | None = None) -> str:
    """A presigned GET of an object in the data bucket; with `attachment`, served as a download of that name.

    Being a raw S3 URL it also stops working when the signing credentials expire, whatever `lifetime` says.
    """
    params = {"Bucket": get_settings().data_bucket, "Key": key}
    if attachment is not None:
        safe_name = os.path.basename(attachment).replace('"', "")
        params["ResponseContentDisposition"] = f'attachment; filename="{safe_name}"'
    return aws.s3().generate_presigned_url("get_object", Params=params, ExpiresIn=int(lifetime.total_seconds()))


def presigned_download(key: str, filename: str, lifetime: timedelta = REDIRECT_LIFETIME) -> str:
    """A short-lived S3 URL for the object, served with a `Content-Disposition` attachment name."""
    return presigned_get(key, lifetime, attachment=filename)
