"""The local API Gateway: HTTP requests become HTTP API v2 events that Powertools' resolver accepts, and the
JWT stand-in passes verified claims exactly where the deployed authorizer puts them."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from werkzeug.test import Client

from pixcrawler_local import tokens
from pixcrawler_local.gateway import Gateway

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class Recorder:
    """A real Powertools HTTP API app, keeping the events it was invoked with."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        app = APIGatewayHttpResolver()

        @app.get("/v1/whoami")
        def whoami() -> dict[str, Any]:
            claims = app.current_event.request_context.authorizer.jwt_claim or {}
            return {"sub": claims.get("sub"), "q": app.current_event.query_string_parameters}

        @app.post("/v1/upload")
        def upload() -> Response[bytes]:
            body = base64.b64decode(app.current_event.body or "")
            return Response(201, "application/octet-stream", body[::-1], cookies=[])

        self.app = app

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return self.app.resolve(event, None)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Client:
    return Client(Gateway(recorder, SECRET))


def test_a_request_becomes_a_valid_http_api_v2_event(client: Client, recorder: Recorder) -> None:
    client.set_cookie("a", "1")
    client.set_cookie("b", "2")
    response = client.get("/v1/whoami?tag=a&tag=b&x=1", headers={"X-Trace": "t"})
    assert response.status_code == 200
    event = recorder.events[0]
    APIGatewayProxyEventV2Model.model_validate(event)
    assert event["rawPath"] == "/v1/whoami" and event["rawQueryString"] == "tag=a&tag=b&x=1"
    assert event["queryStringParameters"] == {"tag": "a,b", "x": "1"}  # repeated values joined, as AWS does
    assert event["headers"]["x-trace"] == "t" and "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["method"] == "GET"
    assert "authorizer" not in event["requestContext"]


def test_a_valid_token_puts_its_claims_where_the_jwt_authorizer_does(client: Client, recorder: Recorder) -> None:
    token = tokens.mint(SECRET, "Ada@Example.com")
    response = client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.json["sub"] == str(tokens.user_id("ada@example.com"))
    claims = recorder.events[0]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["email"] == "Ada@Example.com"
    assert all(isinstance(value, str) for value in claims.values())  # the HTTP API passes every claim as a string


@pytest.mark.parametrize(
    "token",
    [
        tokens.mint("another-secret-that-is-long-enough-for-hs256", "a@example.com"),
        tokens.mint(SECRET, "a@example.com", lifetime=timedelta(seconds=-5)),
        "not-a-jwt",
    ],
)
def test_a_bad_token_reaches_the_function_without_claims(client: Client, recorder: Recorder, token: str) -> None:
    client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert "authorizer" not in recorder.events[0]["requestContext"]


def test_binary_bodies_travel_base64_both_ways(client: Client, recorder: Recorder) -> None:
    payload = bytes(range(256))
    response = client.post("/v1/upload", data=payload, headers={"Content-Type": "application/octet-stream"})
    event = recorder.events[0]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == payload
    assert response.status_code == 201 and response.data == payload[::-1]


def test_unknown_routes_get_the_functions_answer(client: Client) -> None:
    assert client.get("/v1/nowhere").status_code == 404


def test_a_function_that_raises_answers_500_like_the_gateway(recorder: Recorder) -> None:
    def crash(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    response = Client(Gateway(crash, SECRET)).get("/v1/whoami")
    assert response.status_code == 500 and response.json == {"message": "Internal Server Error"}
