"""Admitting a chunk's downloads host by host: one lane per host, all sharing the chunk's download threads.

A lane starts its next candidate only when the origin's robots.txt allows it and the host's shared budget
(`hosts.take`, a few tokens and slots per statement) grants a request. The scheduler (the chunk's own thread)
hands the download threads only what was admitted, and never more than there are free threads, so a request
starts when its token is granted: admitted requests cannot queue up and reach a host in a burst. While a
lane waits for its host, the others go on: a throttled host never slows a fast one.

A lane whose host has nothing for it within `CRAWL_HOST_MAX_WAIT` (or before the chunk must stop), or whose
host is paused for longer, gives up for this delivery: its remaining candidates are deferred, to come back
with the chunk's next delivery. A host marked unlimited (rate and concurrency `null` in
`CRAWL_HOST_OVERRIDES`, e.g. the benchmarks' loopback host) skips the shared state entirely.

The download threads are the process's (`threads.Threads`), shared with the chunks an invocation overlaps:
a scheduler starts a download only on a thread free now, and tells the invocation (`drained`) when it has
nothing left to start, so the next chunk may take the threads this one's last downloads leave idle.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger

from pixcrawler.crawl import hosts, robots
from pixcrawler.crawl.download import Downloader, Throttled
from pixcrawler.crawl.refusals import Deferral
from pixcrawler.crawl.threads import Threads
from pixcrawler.providers import Candidate
from pixcrawler.settings import Settings

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class Gathered:
    outcomes: list[object]
    """What each settled candidate came to (whatever `download` returned, or a robots refusal)."""
    deferred: list[Candidate]
    deferred_by: Counter[Deferral]
    resume_in: float
    """Seconds until the earliest deferred host may have room again."""


@dataclass(eq=False)
class _Lane:
    host: str
    limits: hosts.Limits
    waiting: deque[Candidate]
    slots: int = 0
    tokens: int = 0
    in_flight: int = 0
    succeeded: int = 0
    wake_at: float = 0.0
    leased: bool = False
    resume_in: float | None = None
    """Set when the lane gave up for this delivery: seconds until its host may have room."""

    @property
    def active(self) -> bool:
        return bool(self.waiting) and self.resume_in is None


def _host_of(url: str) -> str:
    try:
        return hosts.host_key(urlsplit(url).hostname or "")
    except ValueError:
        return ""


@dataclass(eq=False)
class Scheduler:
    """One chunk's admission: call `run` once."""

    download: Callable[[Candidate], object]
    downloader: Downloader
    threads: Threads
    settings: Settings
    stop_by: float
    respect_robots: bool
    drained: Callable[[], None] = lambda: None
    """Called once, when every candidate has been started or set aside: only running downloads are left."""
    _lease: str = field(default_factory=lambda: uuid.uuid4().hex)
    _rules: dict[str, robots.Rules] = field(default_factory=dict)
    _fetching: dict[Future[Any], str] = field(default_factory=dict)
    _running: dict[Future[Any], tuple[_Lane, Candidate]] = field(default_factory=dict)
    _outcomes: list[object] = field(default_factory=list)
    _deferred: list[Candidate] = field(default_factory=list)
    _deferred_by: Counter[Deferral] = field(default_factory=Counter)

    def run(self, candidates: list[Candidate]) -> Gathered:
        lanes: dict[str, _Lane] = {}
        for candidate in candidates:
            host = _host_of(candidate.url)
            lane = lanes.get(host)
            if lane is None:
                limits = hosts.limits_for(host, self.settings) if host else hosts.Limits(None, None)
                lane = lanes[host] = _Lane(host, limits, deque())
                lane.slots = self._threads if limits.concurrency is None else 0
            lane.waiting.append(candidate)
        if self.respect_robots:
            self._rules.update(robots.cached({o for c in candidates if (o := robots.origin_of(c.url))}))
        try:
            self._loop(list(lanes.values()))
        finally:
            for lane in lanes.values():
                if lane.leased:
                    hosts.release(lane.host, self._lease)
        resume = [lane.resume_in for lane in lanes.values() if lane.resume_in is not None]
        return Gathered(self._outcomes, self._deferred, self._deferred_by, min(resume, default=0.0))

    @property
    def _threads(self) -> int:
        return self.threads.size

    def _loop(self, lanes: list[_Lane]) -> None:
        drained = False
        while True:
            seen = self.threads.generation
            for task in [task for task in (*self._running, *self._fetching) if task.done()]:
                self._finished(task, lanes)
            self._start(lanes)
            active = [lane for lane in lanes if lane.active]
            if not active and not drained:
                drained = True
                self.drained()
            busy = bool(self._running or self._fetching)
            if not busy and not active:
                return
            if not busy and all(math.isinf(lane.wake_at) for lane in active):
                for lane in active:  # nothing running can wake these lanes: never expected, but never spin
                    self._defer(lane, Deferral.HOST_BUSY, hosts.BUSY_POLL)
                return
            now = time.monotonic()
            if busy:  # a lane due now waits for a free thread: any task's end
                wake = min((lane.wake_at for lane in active if lane.wake_at > now), default=math.inf)
            else:  # the earliest wake; one due now and not started has found every thread another chunk's
                wake = min(lane.wake_at for lane in active)
                wake = math.inf if wake <= now and self.threads.free == 0 else max(wake, now)
            self.threads.wait(seen, None if math.isinf(wake) else wake - now)

    def _start(self, lanes: list[_Lane]) -> None:
        """Round-robin over the lanes, one candidate each per pass, while threads are free."""
        progress = True
        while progress:
            progress = False
            for lane in lanes:
                if self.threads.free == 0:
                    return
                if lane.active and lane.wake_at <= time.monotonic() and self._admit(lane):
                    progress = True

    def _admit(self, lane: _Lane) -> bool:
        """Start the lane's next candidate if robots.txt and the host's budget allow it now."""
        candidate = lane.waiting[0]
        if self.respect_robots and (origin := robots.origin_of(candidate.url)):
            rules = self._rules.get(origin)
            if rules is None:
                if origin not in self._fetching.values():
                    fetch = self.threads.submit(robots.fetch, origin, self.downloader, self.stop_by)
                    if fetch is None:
                        return False
                    self._fetching[fetch] = origin
                lane.wake_at = math.inf
                return False
            if refusal := rules.refusal(candidate.url, robots.agent_token(self.settings.crawl_user_agent)):
                lane.waiting.popleft()
                self._outcomes.append(refusal)
                return True
        if not lane.limits.unlimited and not self._budget(lane):
            return False
        task = self.threads.submit(self.download, candidate)
        if task is None:  # another chunk took the last thread since `_start` looked
            return False
        lane.waiting.popleft()
        if not lane.limits.unlimited:
            lane.tokens -= 1
        lane.in_flight += 1
        self._running[task] = (lane, candidate)
        return True

    def _budget(self, lane: _Lane) -> bool:
        """True when the lane holds a token and a free slot, taking a batch from the shared budget if needed."""
        if lane.in_flight >= lane.slots and lane.in_flight > 0:
            lane.wake_at = math.inf  # one of its own downloads ending frees a slot
            return False
        if lane.tokens > 0 and lane.in_flight < lane.slots:
            return True
        limits = lane.limits
        wanted_slots = min(limits.concurrency or self._threads, self._threads, len(lane.waiting) + lane.in_flight)
        grant = hosts.take(
            lane.host,
            limits,
            want=max(0, min(int(limits.burst), len(lane.waiting)) - lane.tokens),
            held=lane.slots,
            want_slots=0 if limits.concurrency is None else max(0, wanted_slots - lane.slots),
            lease=self._lease,
            until=hosts.lease_until(self.stop_by, self.settings),
            succeeded=lane.succeeded,
        )
        lane.succeeded = 0
        lane.slots += grant.slots
        lane.leased = lane.leased or grant.slots > 0
        lane.tokens += grant.tokens
        if lane.tokens > 0 and lane.in_flight < lane.slots:
            return True
        if lane.in_flight > 0 and not grant.paused and lane.tokens > 0:
            lane.wake_at = math.inf
            return False
        self._wait(lane, Deferral.HOST_PAUSED if grant.paused else Deferral.HOST_BUSY, grant.wait)
        return False

    def _wait(self, lane: _Lane, reason: Deferral, seconds: float) -> None:
        """Wait in this delivery if the host has room soon enough, else defer the lane's candidates."""
        now = time.monotonic()
        if now + seconds <= min(self.stop_by, now + self.settings.crawl_host_max_wait):
            lane.wake_at = now + seconds
        else:
            self._defer(lane, reason, seconds)

    def _defer(self, lane: _Lane, reason: Deferral, seconds: float) -> None:
        lane.resume_in = max(1.0, seconds)
        self._deferred.extend(lane.waiting)
        self._deferred_by[reason] += len(lane.waiting)
        logger.info("deferred %d candidate(s) of %s for %.1f s (%s)", len(lane.waiting), lane.host, seconds, reason)
        lane.waiting.clear()

    def _finished(self, task: Future[Any], lanes: list[_Lane]) -> None:
        if task in self._fetching:
            origin = self._fetching.pop(task)
            rules = self._rules[origin] = task.result()
            delay = rules.crawl_delay(robots.agent_token(self.settings.crawl_user_agent))
            for lane in lanes:
                if delay and lane.host == _host_of(origin):
                    lane.limits = lane.limits.with_crawl_delay(delay)
                if math.isinf(lane.wake_at):
                    lane.wake_at = 0.0
            return
        lane, candidate = self._running.pop(task)
        lane.in_flight -= 1
        if math.isinf(lane.wake_at):
            lane.wake_at = 0.0
        try:
            self._outcomes.append(task.result())
            lane.succeeded += 1
        except Throttled as error:
            lane.waiting.appendleft(candidate)
            lane.tokens = 0
            if lane.resume_in is not None:  # the lane already gave up: this one goes with the others
                self._defer(lane, Deferral.THROTTLED, lane.resume_in)
            elif lane.wake_at <= time.monotonic():  # not yet paused by an earlier answer of the same burst
                pause = hosts.throttled(lane.host, lane.limits, error.retry_after, self.settings)
                logger.info("%s answered %s: paused for %.1f s", lane.host, error, pause)
                self._wait(lane, Deferral.THROTTLED, pause)
