"""What an operator watches, in one place: the Powertools `Tracer` and the CloudWatch metrics of the workers.

Metrics are CloudWatch embedded metric format (EMF): JSON documents printed to the function's log when an
invocation ends, which CloudWatch Logs turns into metrics, so recording one makes no call at runtime. The
namespace is `POWERTOOLS_METRICS_NAMESPACE` and the `service` dimension `POWERTOOLS_SERVICE_NAME`, both set
by template.yaml. With `POWERTOOLS_METRICS_DISABLED` (the local stack, the tests) nothing is recorded or
printed. The tracer is a no-op outside Lambda or with `POWERTOOLS_TRACE_DISABLED`; in Lambda it traces boto3
(S3, SQS) calls itself, and the workers open subsegments around provider calls and the database commit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from pixcrawler.crawl.refusals import Deferral, Refusal

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

_recorded: list[tuple[str, MetricUnit, float, tuple[str, str] | None]] = []
"""(metric, unit, value, optional (dimension, value)) recorded during this invocation, printed when it ends."""

_tracer: Tracer | None = None

Handler = TypeVar("Handler", bound=Callable[..., Any])


def instrumented(handler: Handler) -> Handler:
    """Trace the invocation and print its metrics when it ends (nothing when none were recorded).

    The tracer is made here, by the functions that are traced, so modules the API also imports (`db`) do not
    load the X-Ray SDK (about 0.6 s, and botocore) for it. Only boto3 is patched: patching HTTP clients would
    add a subsegment per downloaded image. Where Powertools would disable the tracer (outside Lambda, or with
    `POWERTOOLS_TRACE_DISABLED`: the local stack, the tests) none is made, by Powertools' own rule: a disabled
    one still loads the SDK and builds its X-Ray client, 0.3-0.4 s of the local stack's start-up."""
    global _tracer
    from aws_lambda_powertools import Tracer

    if _tracer is None and not Tracer._is_tracer_disabled():
        _tracer = Tracer(patch_modules=["botocore"])
    traced = handler if _tracer is None else _tracer.capture_lambda_handler(handler)

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        try:
            return traced(event, context)
        finally:
            _publish()

    return run  # type: ignore[return-value]


@contextmanager
def subsegment(name: str) -> Iterator[None]:
    """An X-Ray subsegment around the block in a traced function; nothing elsewhere (the API, the tests)."""
    if _tracer is None:
        yield
        return
    with _tracer.provider.in_subsegment(name):
        yield


def chunk_completed(stored: int, refused: Mapping[Refusal, int], seconds: float) -> None:
    """A crawl chunk committed: images it stored, the candidates it refused by reason, how long it ran."""
    _add("ImagesStored", MetricUnit.Count, stored)
    _add("ChunkDuration", MetricUnit.Seconds, seconds)
    for reason, count in sorted(refused.items()):
        _add_with("ImagesRefused", "Reason", reason.value, count)


def candidates_deferred(deferred: Mapping[Deferral, int]) -> None:
    """Candidates a chunk put off for a busy host, by reason (a deferral delays a job, it fails nothing)."""
    for reason, count in sorted(deferred.items()):
        _add_with("ImagesDeferred", "Reason", reason.value, count)


def validation_completed(valid: int, invalid: int) -> None:
    """A validation job completed: its images' final outcome, duplicates removed included."""
    _add("ImagesValid", MetricUnit.Count, valid)
    _add("ImagesInvalid", MetricUnit.Count, invalid)


def export_completed(images: int, size: int, seconds: float) -> None:
    """An export's file is complete: its images, bytes, and time from its start (across continuations)."""
    _add("ImagesExported", MetricUnit.Count, images)
    _add("BytesExported", MetricUnit.Bytes, size)
    _add("ExportDuration", MetricUnit.Seconds, seconds)


def chunks_queued(count: int) -> None:
    _add("ChunksQueued", MetricUnit.Count, count)


def job_failed(kind: str) -> None:
    """A crawl, validation or export job ended failed (`Kind` dimension)."""
    _add_with("JobsFailed", "Kind", kind, 1)


def _add(name: str, unit: MetricUnit, value: float) -> None:
    if not is_metrics_disabled():
        _recorded.append((name, unit, value, None))


def _add_with(name: str, dimension: str, value: str, amount: float) -> None:
    if not is_metrics_disabled():
        _recorded.append((name, MetricUnit.Count, amount, (dimension, value)))


def _publish() -> None:
    """One EMF document for the plain metrics, one per dimensioned value (a document's dimensions apply to
    every metric in it). `Metrics()` reads the namespace and service from the environment now."""
    recorded = list(_recorded)
    _recorded.clear()
    if not recorded:
        return
    metrics = Metrics()
    service = {"service": metrics.service} if metrics.service else {}
    for name, unit, value, dimension in recorded:
        if dimension is None:
            metrics.add_metric(name=name, unit=unit, value=value)
    if metrics.metric_set:
        metrics.flush_metrics()
    for name, unit, value, dimension in recorded:
        if dimension is not None:
            with single_metric(name=name, unit=unit, value=value, default_dimensions=service) as metric:
                metric.add_dimension(name=dimension[0], value=dimension[1])
