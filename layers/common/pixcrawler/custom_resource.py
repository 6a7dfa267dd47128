"""CloudFormation custom resources that always answer, so a stack never waits an hour for a lost reply.

CloudFormation invokes a custom resource asynchronously and waits for a PUT to the presigned
`ResponseURL`. An exception would only make Lambda retry, and a timeout would send nothing at all, so
`respond_always` catches every failure as FAILED with its reason, and a timer sends FAILED shortly before
the function runs out of time. Exactly one reply is sent per invocation.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)

REPLY_MARGIN_MS = 10_000  # time kept in hand to send FAILED before Lambda stops the function
REPLY_TIMEOUT_S = 8  # inside the margin, so a slow reply URL cannot outlast the function
REASON_LIMIT = 3_000  # CloudFormation truncates longer reasons anyway; the full error goes to the log


@dataclass(frozen=True, slots=True)
class Result:
    physical_resource_id: str
    data: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Mapping[str, Any]], Result]


class _Reply:
    """Sends the single reply; whichever of the work and the timer comes first wins."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        self._event = event
        self._lock = threading.Lock()
        self.sent: str | None = None

    def send(self, status: str, reason: str, result: Result | None = None) -> None:
        with self._lock:
            if self.sent is not None:
                return
            self.sent = status
        event = self._event
        body = {
            "Status": status,
            "Reason": reason[:REASON_LIMIT],
            "PhysicalResourceId": (result.physical_resource_id if result else None)
            or event.get("PhysicalResourceId")
            or event["LogicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": result.data if result else {},
        }
        payload = json.dumps(body).encode()
        # The presigned URL signs no content type; an empty one keeps urllib from adding its own.
        request = urllib.request.Request(event["ResponseURL"], data=payload, method="PUT", headers={"Content-Type": ""})
        try:
            with urllib.request.urlopen(request, timeout=REPLY_TIMEOUT_S) as response:
                logger.info("Replied to CloudFormation", extra={"status": status, "http_status": response.status})
        except Exception:
            logger.exception("Could not reply to CloudFormation", extra={"status": status})


def respond_always(event: Mapping[str, Any], remaining_ms: int, handler: Handler) -> str:
    """Run `handler` for a custom-resource event and reply SUCCESS or FAILED; returns the status sent."""
    reply = _Reply(event)
    deadline = max(remaining_ms - REPLY_MARGIN_MS, 0) / 1000
    reason = f"Still running {REPLY_MARGIN_MS // 1000} s before the function times out; see its log"
    timer = threading.Timer(deadline, reply.send, args=("FAILED", reason))
    timer.daemon = True
    timer.start()
    try:
        result = handler(event)
    except Exception as error:
        logger.exception("Custom resource failed", extra={"request_type": event.get("RequestType")})
        reply.send("FAILED", f"{type(error).__name__}: {error}")
    else:
        reply.send("SUCCESS", "", result)
    finally:
        timer.cancel()
    return reply.sent or "FAILED"
