"""Per-host budgets shared by every crawl worker of the deployment, kept in PostgreSQL (`host_budgets`).

A host is its registrable domain (`upload.wikimedia.org` and `commons.wikimedia.org` are one host,
`wikimedia.org`), from the public suffix list bundled in `publicsuffixlist` (nothing fetched at run time);
an IP literal or a name the list does not cover (`localhost`) is its own host.

Each host has a token bucket (its rate), a concurrency cap held as leases that expire (a worker that dies
cannot hold a host forever), and a pause set by 429/503 answers. Tokens and slots are taken in small batches
by one UPDATE per batch, the SQL function `host_budget_take` (defined by migration 0012, its one definition):
it locks the row first (`FOR UPDATE` in its first step, so a concurrent take waits and then computes from the
newest values: no grant is lost or given twice), refills the bucket, grants what it can and returns the grant.
A function because pg8000 scans a statement's whole text in Python for placeholders at every execution: the
same UPDATE sent as text cost 0.86-1.2 ms of CPU per take, the call 0.48 ms (benchmarks/polite.py).

The bucket holds at most a twentieth of a second's worth of tokens (at least one): any one-second window then
sees at most the rate plus two such bursts (one granted, one held by workers): 1.1 x, whatever the number of workers.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass, replace
from functools import cache

from publicsuffixlist import PublicSuffixList
from sqlalchemy import text

from pixcrawler.db import get_engine
from pixcrawler.settings import Settings

RECOVERY = 0.05
"""Additive recovery: each download a host answered normally gives back this much of its rate factor."""
FLOOR = 1 / 64
"""The rate factor never falls below this: a host backed off six times still gets a trickle to probe it."""
MAX_PAUSE = 3600.0
"""A circuit's cool-down stops doubling at an hour."""
BUSY_POLL = 1.0
"""Seconds before asking again for a slot when every slot of the host is leased."""


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def host_key(hostname: str) -> str:
    """The budget a URL's host name counts against: its registrable domain, or itself for IP literals and
    names without one."""
    name = hostname.strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return _suffixes().privatesuffix(name) or name


@dataclass(frozen=True, slots=True)
class Limits:
    """A host's budget: requests per second and downloads at once; None lifts that limit."""

    rate: float | None
    concurrency: int | None

    @property
    def unlimited(self) -> bool:
        return self.rate is None and self.concurrency is None

    @property
    def burst(self) -> float:
        return 1.0 if self.rate is None else max(1.0, self.rate / 20)

    def with_crawl_delay(self, delay: float | None) -> Limits:
        """robots.txt's `Crawl-delay` caps the rate at one request per `delay` seconds."""
        if not delay or delay <= 0:
            return self
        return replace(self, rate=min(self.rate or math.inf, 1 / delay))


def limits_for(host: str, settings: Settings) -> Limits:
    """The deployment's defaults, or the host's entry in `CRAWL_HOST_OVERRIDES`."""
    override = settings.crawl_host_overrides.get(host)
    if override is None:
        return Limits(settings.crawl_host_rate, settings.crawl_host_concurrency)
    rate, concurrency = (
        override.pick("rate", settings.crawl_host_rate),
        override.pick("concurrency", settings.crawl_host_concurrency),
    )
    return Limits(None if rate is None else float(rate), None if concurrency is None else int(concurrency))


@dataclass(frozen=True, slots=True)
class Grant:
    tokens: int
    slots: int
    wait: float
    """When nothing was granted: seconds until asking again can succeed."""
    paused: bool
    """True when the host is paused (Retry-After, backoff or an open circuit) for `wait` seconds."""


_NOW = "statement_timestamp()"
_LEASE = "CAST(:lease AS text)"
_TAKE = text(
    "SELECT * FROM host_budget_take(:host, :want, :held, :want_slots, :cap, :lease, :until, :burst, :rate, :recovered)"
)
_CREATE = text(
    f"""
    INSERT INTO host_budgets (host, tokens, refilled_at) VALUES (:host, :burst, {_NOW})
    ON CONFLICT (host) DO NOTHING
    """
)
_RELEASE = text(f"UPDATE host_budgets SET leases = leases - {_LEASE}, updated_at = {_NOW} WHERE host = :host")
_OPENS = "failures + 1 >= :threshold"
_RETRY = "CAST(:retry_after AS float8)"
_PAUSE = f"""greatest(
    coalesce({_RETRY}, 0),
    CASE WHEN {_OPENS} THEN least({MAX_PAUSE}, :circuit * power(2, circuit_opens))
         WHEN {_RETRY} IS NULL THEN least(:circuit, power(2, failures))
         ELSE 0 END)"""
_THROTTLED = text(
    f"""
    UPDATE host_budgets SET
        paused_until = greatest(coalesce(paused_until, {_NOW}), {_NOW} + make_interval(secs => {_PAUSE})),
        rate_factor = CASE WHEN {_RETRY} IS NULL THEN greatest({FLOOR}, rate_factor / 2) ELSE rate_factor END,
        circuit_opens = circuit_opens + CASE WHEN {_OPENS} THEN 1 ELSE 0 END,
        failures = CASE WHEN {_OPENS} THEN 0 ELSE failures + 1 END,
        tokens = least(tokens, 0),
        updated_at = {_NOW}
    WHERE host = :host
    RETURNING extract(epoch FROM paused_until - {_NOW})
    """
)


def take(
    host: str, limits: Limits, *, want: int, held: int, want_slots: int, lease: str, until: float, succeeded: int
) -> Grant:
    """Take up to `want` tokens and `want_slots` more download slots for lease `lease` (held until the epoch
    time `until`) in one statement. `held` is how many slots the lease holds already: tokens are never granted
    beyond the lease's slots, so the tokens a worker holds (at most a burst) are spent as its downloads end
    and cannot bunch up in a window. `succeeded` downloads since the last take answered normally: they
    recover the host's rate factor."""
    parameters = {
        "host": host,
        "want": want,
        "held": held,
        "want_slots": want_slots,
        "cap": limits.concurrency if limits.concurrency is not None else 1_000_000,
        "lease": lease,
        "until": until,
        "burst": limits.burst,
        "rate": limits.rate if limits.rate is not None else 1e9,
        "recovered": RECOVERY * succeeded,
    }
    with get_engine().begin() as connection:  # a Core transaction: an ORM session's upkeep costs CPU here
        row = connection.execute(_TAKE, parameters).one_or_none()
        if row is None:
            connection.execute(_CREATE, parameters)
            row = connection.execute(_TAKE, parameters).one()
    granted, slots, tokens, factor, paused_for = row
    if paused_for is not None and paused_for > 0:
        return Grant(granted, slots, float(paused_for), paused=True)
    if granted or slots:
        return Grant(granted, slots, 0.0, paused=False)
    if held + slots == 0:
        return Grant(0, 0, BUSY_POLL, paused=False)
    rate = (limits.rate or 1e9) * factor
    return Grant(0, 0, max(0.0, (1 - tokens) / rate), paused=False)


def release(host: str, lease: str) -> None:
    """Give back every slot of `lease` (it would expire anyway, but others may use the host now)."""
    with get_engine().begin() as connection:
        connection.execute(_RELEASE, {"host": host, "lease": lease})


def throttled(host: str, limits: Limits, retry_after: float | None, settings: Settings) -> float:
    """The host answered 429 or 503: pause it for every worker and return the pause in seconds.

    With `Retry-After`, the pause is what it asks. Without, the rate factor halves (multiplicative decrease;
    each normal answer adds `RECOVERY` back) and the pause grows 1, 2, 4 ... seconds with the failures in a
    row. At `CRAWL_HOST_CIRCUIT_FAILURES` in a row the circuit opens: a pause of `CRAWL_HOST_CIRCUIT_SECONDS`
    that doubles each time it reopens without a normal answer in between, up to an hour."""
    parameters = {
        "host": host,
        "burst": limits.burst,
        "retry_after": retry_after,
        "threshold": settings.crawl_host_circuit_failures,
        "circuit": settings.crawl_host_circuit_seconds,
    }
    with get_engine().begin() as connection:
        connection.execute(_CREATE, parameters)
        paused_for = connection.execute(_THROTTLED, parameters).scalar_one()
    return max(0.0, float(paused_for or 0.0))


def lease_until(stop_by: float, settings: Settings) -> float:
    """Epoch seconds a chunk's lease lasts: its last download may start at `stop_by` and then run its time."""
    return time.time() + max(0.0, stop_by - time.monotonic()) + settings.download_total_timeout
