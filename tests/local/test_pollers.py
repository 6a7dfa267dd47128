"""The local event source mapping against SQS (moto): batches, partial failures, redrive to the DLQ."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pixcrawler_local.emulator import create_queues
from pixcrawler_local.pollers import EventSource, Poller, succeeded


class Worker:
    """A real handler in the shape our workers have: it fails the records whose body says so."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        failures = [r["messageId"] for r in event["Records"] if json.loads(r["body"]).get("poison")]
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


@pytest.fixture
def queue(aws: dict[str, Any]) -> dict[str, str]:
    return create_queues(aws["sqs"], "t", visibility_timeout=1, max_receive_count=2)["crawl"]


def _poller(aws: dict[str, Any], queue: dict[str, str], invoke: Any, batch_size: int = 10) -> Poller:
    source = EventSource(queue["url"], queue["arn"], invoke, batch_size=batch_size, wait_seconds=0)
    return Poller(aws["sqs"], source, "crawl")


def _count(aws: dict[str, Any], url: str) -> int:
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_batch_arrives_as_lambda_builds_it_and_only_successes_are_deleted(
    aws: dict[str, Any], queue: dict[str, str]
) -> None:
    for n in range(3):
        aws["sqs"].send_message(QueueUrl=queue["url"], MessageBody=json.dumps({"n": n, "poison": n == 1}))
    worker = Worker()
    assert _poller(aws, queue, worker).poll_once() == 3

    record = worker.events[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == queue["arn"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"messageId", "receiptHandle", "body", "md5OfBody", "messageAttributes", "awsRegion"} <= set(record)
    assert _count(aws, queue["url"]) == 1  # the poison message only, invisible until its timeout


def test_a_poison_message_is_redelivered_then_moved_to_the_dead_letter_queue(
    aws: dict[str, Any], queue: dict[str, str]
) -> None:
    aws["sqs"].send_message(QueueUrl=queue["url"], MessageBody=json.dumps({"poison": True}))
    worker = Worker()
    poller = _poller(aws, queue, worker)
    receive_counts = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _count(aws, queue["dlq_url"]) == 0:
        if poller.poll_once():
            receive_counts.append(worker.events[-1]["Records"][0]["attributes"]["ApproximateReceiveCount"])
        time.sleep(0.2)
    assert receive_counts == ["1", "2"]
    assert _count(aws, queue["dlq_url"]) == 1
    assert _count(aws, queue["url"]) == 0


def test_a_handler_that_raises_fails_the_whole_batch(aws: dict[str, Any], queue: dict[str, str]) -> None:
    for n in range(2):
        aws["sqs"].send_message(QueueUrl=queue["url"], MessageBody=json.dumps({"n": n}))

    def crash(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    assert _poller(aws, queue, crash).poll_once() == 2
    assert _count(aws, queue["url"]) == 2


def test_the_batch_size_is_respected(aws: dict[str, Any], queue: dict[str, str]) -> None:
    for n in range(5):
        aws["sqs"].send_message(QueueUrl=queue["url"], MessageBody=json.dumps({"n": n}))
    worker = Worker()
    poller = _poller(aws, queue, worker, batch_size=2)
    while poller.poll_once():
        pass
    assert all(len(event["Records"]) <= 2 for event in worker.events)
    assert sum(len(event["Records"]) for event in worker.events) == 5


@pytest.mark.parametrize(
    ("result", "deleted"),
    [
        (None, ["a", "b"]),
        ({"batchItemFailures": []}, ["a", "b"]),
        ({}, ["a", "b"]),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["a"]),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, []),  # unknown id: the whole batch failed
        ({"batchItemFailures": [{"itemIdentifier": None}]}, []),
        ({"batchItemFailures": "nonsense"}, []),
        ("not a dict", []),
    ],
)
def test_lambda_rules_for_reported_failures(result: Any, deleted: list[str]) -> None:
    assert succeeded(["a", "b"], result) == deleted


def test_a_batch_received_once_stopping_goes_back_at_once_uninvoked(aws: dict[str, Any], queue: dict[str, str]) -> None:
    """At shutdown the stack does not wait for pollers idling in a long poll: whatever one receives then is made
    visible again instead of run, so the next start delivers it at once."""
    aws["sqs"].send_message(QueueUrl=queue["url"], MessageBody=json.dumps({"n": 1}))
    worker = Worker()
    poller = _poller(aws, queue, worker)
    poller.request_stop()
    assert poller.poll_once() == 0 and worker.events == []
    again = aws["sqs"].receive_message(QueueUrl=queue["url"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(message["Body"]) for message in again] == [{"n": 1}]
