"""Why a crawl candidate was not stored: a small, stable set of codes, counted on each chunk and each job.

The codes are part of the API (a crawl job's `refused`) and the keys of JSONB columns: a code may be added,
never renamed or removed. Counting by code rather than keeping messages lets a job of 100,000 URLs say in
one line why nothing was stored; each refusal's detailed message goes to the log with its URL.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Refusal(enum.StrEnum):
    MALFORMED_URL = "malformed_url"
    LOOPBACK_NOT_ALLOWED = "loopback_not_allowed"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    CONNECTION_FAILED = "connection_failed"
    HTTP_STATUS = "http_status"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    OPTED_OUT = "opted_out"
    NOT_AN_IMAGE = "not_an_image"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    OUT_OF_TIME = "out_of_time"
    DUPLICATE = "duplicate"
    UNEXPECTED_ERROR = "unexpected_error"
    ROBOTS_DISALLOWED = "robots_disallowed"
    ROBOTS_UNAVAILABLE = "robots_unavailable"
    HOST_UNAVAILABLE = "host_unavailable"

    @property
    def label(self) -> str:
        """What a user reads in `error_message` and the CLI's summary, with what to do when there is a fix."""
        return _LABELS[self]


_LABELS: dict[str, str] = {
    Refusal.MALFORMED_URL: "malformed URL",
    Refusal.LOOPBACK_NOT_ALLOWED: "address not allowed (loopback; set CRAWL_ALLOW_LOOPBACK=1 or pass --allow-loopback)",
    Refusal.ADDRESS_NOT_ALLOWED: "address not allowed (private, link-local, reserved or otherwise not public)",
    Refusal.CONNECTION_FAILED: "connection failed (DNS, refused, reset or broken response)",
    Refusal.HTTP_STATUS: "HTTP error status",
    Refusal.TOO_MANY_REDIRECTS: "too many redirects",
    Refusal.OPTED_OUT: "X-Robots-Tag: noai",
    Refusal.NOT_AN_IMAGE: "not an image",
    Refusal.TOO_LARGE: "too large",
    Refusal.TIMEOUT: "timeout",
    Refusal.OUT_OF_TIME: "ran out of time",
    Refusal.DUPLICATE: "duplicate",
    Refusal.UNEXPECTED_ERROR: "unexpected error (see the crawl logs)",
    Refusal.ROBOTS_DISALLOWED: "disallowed by the host's robots.txt",
    Refusal.ROBOTS_UNAVAILABLE: "robots.txt unavailable (5xx or unreachable; retried after 10 minutes)",
    Refusal.HOST_UNAVAILABLE: "host busy or rate limiting for longer than CRAWL_MAX_DEFERRALS deferrals",
}


class Deferral(enum.StrEnum):
    """Why a candidate was put off for a later delivery of its chunk (counted on the job, never a failure)."""

    HOST_BUSY = "host_busy"
    """The host's shared budget (rate or concurrency) had nothing for longer than `CRAWL_HOST_MAX_WAIT`."""
    HOST_PAUSED = "host_paused"
    """The host is paused: a Retry-After, a backoff or an open circuit set by any worker."""
    THROTTLED = "throttled"
    """The host answered this candidate with 429 or 503."""


CODES_DOC = ", ".join(f"`{code.value}` ({code.label})" for code in Refusal)


def describe(counts: Mapping[str, int], leading: int | None = None) -> str:
    """`20 address not allowed (loopback; ...), 10 timeout`: the most frequent reasons first, the first
    `leading` of them (all by default) and how many candidates the rest account for.

    Takes plain string keys, as read back from JSONB or JSON, and shows a code this version does not know
    by its name rather than failing."""
    ranked = sorted(
        ((count, code) for code, count in counts.items() if count > 0), key=lambda item: (-item[0], item[1])
    )
    shown, rest = ranked[:leading], ranked[len(ranked) if leading is None else leading :]
    parts = [f"{count} {_LABELS.get(code, code)}" for count, code in shown]
    if rest:
        parts.append(f"{sum(count for count, _ in rest)} for other reasons")
    return ", ".join(parts)


DEFERRAL_CODES_DOC = ", ".join(f"`{code.value}`" for code in Deferral)
