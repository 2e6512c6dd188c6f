from __future__ import annotations

import logging
import time
import uuid

import pytest
from fake_vigil_server import FakeVigil
from vigil_sdk import GlassFlow, Vigil, VigilAPIError, VigilConnectionError, VigilError

UNAUTHORIZED = {"error": "unauthorized", "message": "invalid API key", "details": {"hint": "rotate"}}


def test_posts_the_output_with_key_and_returns_the_answer(vigil_server: FakeVigil) -> None:
    with Vigil("key-1", vigil_server.url + "/") as client:
        answer = client.send_output({"summary": "pool exhausted", "severity": "critical"}, "req-1")

    assert answer == {"id": "out-1", "request_id": "req-1", "status": "accepted"}
    [received] = vigil_server.received
    assert received.path == "/internal/agent-output"
    assert received.headers["x-api-key"] == "key-1"
    assert received.headers["content-type"] == "application/json"
    assert uuid.UUID(received.headers["idempotency-key"]).version == 4
    assert received.body == {
        "request_id": "req-1",
        "payload": {"summary": "pool exhausted", "severity": "critical"},
    }


def test_retries_503_with_the_same_idempotency_key(vigil_server: FakeVigil) -> None:
    vigil_server.then(503, {"error": "unavailable", "message": "bus down"})
    with Vigil("k", vigil_server.url, backoff=0.001) as client:
        answer = client.send_output({"n": 1}, "req-2")
        client.send_output({"n": 2}, "req-3")

    assert answer["status"] == "accepted"
    first, retry, other_call = (r.headers["idempotency-key"] for r in vigil_server.received)
    assert first == retry
    assert other_call != first
    assert vigil_server.received[0].body == vigil_server.received[1].body


def test_uses_the_idempotency_key_given(vigil_server: FakeVigil) -> None:
    vigil_server.then(500, {"error": "internal_error", "message": "boom"})
    with Vigil("k", vigil_server.url, backoff=0.001) as client:
        client.send_output({}, "req-4", idempotency_key="batch-4")

    assert [r.headers["idempotency-key"] for r in vigil_server.received] == ["batch-4", "batch-4"]


def test_waits_as_long_as_retry_after_says(vigil_server: FakeVigil) -> None:
    vigil_server.then(429, {"error": "overloaded", "message": "slow down"}, {"Retry-After": "0.3"})
    with Vigil("k", vigil_server.url, backoff=0.001) as client:
        started = time.monotonic()
        client.send_output({}, "req-5")
        elapsed = time.monotonic() - started

    assert len(vigil_server.received) == 2
    assert elapsed >= 0.3


def test_retry_after_overrides_a_long_backoff(vigil_server: FakeVigil) -> None:
    vigil_server.then(503, {"error": "unavailable", "message": "x"}, {"Retry-After": "0"})
    with Vigil("k", vigil_server.url, backoff=30.0) as client:
        started = time.monotonic()
        client.send_output({}, "req-6")

    assert time.monotonic() - started < 5


def test_401_is_permanent_and_not_retried(vigil_server: FakeVigil) -> None:
    vigil_server.then(401, UNAUTHORIZED)
    with Vigil("bad", vigil_server.url, backoff=0.001) as client, pytest.raises(VigilAPIError) as caught:
        client.send_output({}, "req-7")

    error = caught.value
    assert (error.status, error.code, error.message) == (401, "unauthorized", "invalid API key")
    assert error.details == {"hint": "rotate"}
    assert error.retryable is False
    assert len(vigil_server.received) == 1


def test_gives_up_after_max_retries_with_a_retryable_error(vigil_server: FakeVigil) -> None:
    for _ in range(4):
        vigil_server.then(502, b"<html>bad gateway</html>")
    with (
        Vigil("k", vigil_server.url, max_retries=2, backoff=0.001) as client,
        pytest.raises(VigilAPIError) as caught,
    ):
        client.send_output({}, "req-8")

    assert caught.value.retryable is True
    assert caught.value.code == "http_502"
    assert "bad gateway" in caught.value.message
    assert len(vigil_server.received) == 3


def test_connection_refused_is_retried_then_raised(
    closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="vigil_sdk"),
        Vigil("k", closed_port_url, max_retries=3, backoff=0.001) as client,
        pytest.raises(VigilConnectionError) as caught,
    ):
        client.send_output({}, "req-9")

    assert caught.value.retryable is True
    retries = [r for r in caplog.records if r.name == "vigil_sdk" and "retry" in r.getMessage()]
    assert len(retries) == 3


def test_a_2xx_without_json_is_an_error(vigil_server: FakeVigil) -> None:
    vigil_server.then(200, b"<html>not vigil</html>")
    with (
        Vigil("k", vigil_server.url, backoff=0.001) as client,
        pytest.raises(VigilError, match="JSON object"),
    ):
        client.send_output({}, "req-10")

    assert len(vigil_server.received) == 1


def test_empty_request_id_is_refused_before_sending(vigil_server: FakeVigil) -> None:
    with Vigil("k", vigil_server.url) as client, pytest.raises(ValueError, match="X-Request-ID"):
        client.send_output({}, "")

    assert vigil_server.received == []


def test_agent_code_written_for_glassflow_runs_with_the_alias(vigil_server: FakeVigil) -> None:
    gf = GlassFlow(api_key="your-project-api-key", endpoint=vigil_server.url)
    gf.send_output(
        payload={"summary": "Database connection pool exhausted", "severity": "critical"},
        request_id="req-11",
    )
    gf.close()

    assert vigil_server.received[0].body["request_id"] == "req-11"
    assert vigil_server.received[0].headers["x-api-key"] == "your-project-api-key"
