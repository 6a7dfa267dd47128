"""Real Lambda event shapes: API Gateway HTTP API (payload 2.0) and SQS, as AWS sends them."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from pixcrawler.messages import Message


def http_event(
    method: str,
    path: str,
    *,
    user: uuid.UUID | str | None = None,
    email: str | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event; `user` adds the JWT claims the gateway's authorizer would have verified."""
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "api.example.com",
        "domainPrefix": "api",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
        "requestId": uuid.uuid4().hex,
        "routeKey": "$default",
        "stage": "$default",
        "time": "25/Nov/2026:00:00:00 +0000",
        "timeEpoch": 1795996800000,
    }
    if user is not None:
        claims = {"sub": str(user), "email": email or f"{str(user)[:8]}@example.com", "iss": "https://issuer"}
        request_context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json", "host": "api.example.com", **(headers or {})},
        "queryStringParameters": query or None,
        "requestContext": request_context,
        "body": raw_body,
        "isBase64Encoded": False,
    }


def sqs_record(body: Message | str, *, receive_count: int = 1, queue: str = "queue") -> dict[str, Any]:
    message_id = str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body if isinstance(body, str) else body.model_dump_json(),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795996800000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795996800001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def lambda_context(name: str = "function", timeout_ms: int = 900_000) -> Any:
    """The attributes Powertools and our handlers read from a Lambda context."""

    class Context:
        function_name = name
        function_version = "$LATEST"
        memory_limit_in_mb = 1024
        invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        aws_request_id = str(uuid.uuid4())
        log_group_name = f"/aws/lambda/{name}"
        log_stream_name = "stream"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return timeout_ms

    return Context()
