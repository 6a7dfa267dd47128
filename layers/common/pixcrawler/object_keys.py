"""Where things live in the data bucket.

Keys are derived, never stored twice: an image's key follows from its project, job, keyword and sha256, so
a retried upload rewrites the same object instead of leaving an orphan. Everything a project owns sits under
a per-project prefix so deleting the project can remove it all.
"""

from __future__ import annotations

import re
import secrets

_UNSAFE = re.compile(r"[^a-z0-9]+")


def slug(text: str, max_length: int = 60) -> str:
    """A lowercase ASCII path segment; never empty, never `.` or `..`."""
    return _UNSAFE.sub("-", text.lower()).strip("-")[:max_length] or "item"


def project_prefixes(project_id: int) -> tuple[str, ...]:
    """Every prefix under which a project's objects are stored (images and exports)."""
    return (f"projects/{project_id}/", f"exports/{project_id}/")


def crawl_job_prefix(project_id: int, crawl_job_id: int) -> str:
    return f"projects/{project_id}/crawl-jobs/{crawl_job_id}/"


def image_key(project_id: int, crawl_job_id: int, keyword: str, sha256: str, extension: str) -> str:
    return f"{crawl_job_prefix(project_id, crawl_job_id)}{slug(keyword)}/{sha256}.{extension}"


def export_key(project_id: int, export_job_id: int, filename: str) -> str:
    """An unguessable key: a random segment keeps the object private even if a bucket listing leaks ids."""
    return f"exports/{project_id}/{export_job_id}-{secrets.token_hex(16)}/{filename}"


THUMBNAIL_EXTENSIONS = {"jpeg": "jpg", "webp": "webp"}
"""A thumbnail's format (`images.thumbnail_format`) and the extension its key ends in."""
OWN_THUMBNAIL = "original"
"""`images.thumbnail_format` of an original that is its own thumbnail: one object serves as both."""


def thumbnail_key(image_key: str, thumbnail_format: str) -> str:
    """An image's 256 px preview, stored beside it: under the same job prefix, so whatever removes a job's or a
    project's objects removes it too, and no original's key (they end in their format) can collide. An
    original that already is a thumbnail is its own: no second copy of the same bytes."""
    if thumbnail_format == OWN_THUMBNAIL:
        return image_key
    return f"{image_key}.thumb.{THUMBNAIL_EXTENSIONS[thumbnail_format]}"


def sha256_of(key: str) -> str:
    """The sha256 an image's key, or its thumbnail's, is named by: its file name up to the first dot."""
    return key.rpartition("/")[2].partition(".")[0]


def thumbnail_keys(image_key: str) -> list[str]:
    """Every key a thumbnail of this image could have: for removing it when the row that says which is gone."""
    return [thumbnail_key(image_key, thumbnail_format) for thumbnail_format in THUMBNAIL_EXTENSIONS]
