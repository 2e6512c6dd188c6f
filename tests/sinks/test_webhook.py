from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from pydantic import TypeAdapter

from tests.doubles.webhook_receiver import WebhookReceiver
from vigil import __version__
from vigil.errors import DeliveryError
from vigil.outputs import OutputEnvelope
from vigil.sinks import SINK_TYPES, SlackSink, WebhookSink, build_sink
from vigil.sinks.webhook import sign, verify
from vigil.specs import SinkSpec, WebhookSinkSpec

SECRET = b"whsec-test-0123456789"


def make_output(payload: dict[str, Any] | None = None, **overrides: Any) -> OutputEnvelope:
    fields: dict[str, Any] = {
        "id": "out-0001",
        "project_id": "proj-42",
        "request_id": "req-abc",
        "pipeline": "errors",
        "batch_records": 7,
        "received_at": datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
        "payload": payload
        if payload is not None
        else {"summary": "DB pool exhausted", "severity": "critical"},
    }
    fields.update(overrides)
    return OutputEnvelope(**fields)


def webhook_spec(url: str, **extra: Any) -> WebhookSinkSpec:
    return WebhookSinkSpec.model_validate({"type": "webhook", "url": url, **extra})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def test_delivery_is_signed_and_verifiable_with_the_receivers_secret(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver(secret=SECRET) as rx:
        sink = WebhookSink(webhook_spec(rx.url, secret=SECRET.decode(), headers={"X-Team": "sre"}), client)
        output = make_output()
        await sink.deliver(output)

        [req] = rx.requests
        assert req.status == 200 and req.error is None
        assert rx.verify(req)
        assert req.header("content-type") == "application/json"
        assert req.header("user-agent") == f"vigil/{__version__}"
        assert req.header("x-vigil-delivery") == "out-0001"
        assert req.header("x-team") == "sre"
        timestamp = req.header("x-vigil-timestamp")
        assert timestamp is not None and abs(int(timestamp) - time.time()) < 60
        # The documented formula, recomputed independently of `sign`.
        digest = hmac.new(SECRET, f"{timestamp}.".encode() + req.body, hashlib.sha256).hexdigest()
        assert req.header("x-vigil-signature") == f"v1={digest}"

        assert req.json() == {
            "id": "out-0001",
            "project_id": "proj-42",
            "request_id": "req-abc",
            "pipeline": "errors",
            "batch_records": 7,
            "received_at": "2024-01-15T10:30:00Z",
            "payload": {"summary": "DB pool exhausted", "severity": "critical"},
        }


async def test_extra_headers_cannot_replace_vigils_own(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver(secret=SECRET) as rx:
        forged = {"x-vigil-signature": "v1=forged", "X-Vigil-Delivery": "other", "content-type": "text/plain"}
        sink = WebhookSink(webhook_spec(rx.url, secret=SECRET.decode(), headers=forged), client)
        await sink.deliver(make_output())
        [req] = rx.requests
        assert rx.verify(req)
        assert req.header("x-vigil-delivery") == "out-0001"
        assert req.header("content-type") == "application/json"


async def test_without_a_secret_no_signature_is_sent(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver() as rx:
        sink = WebhookSink(webhook_spec(rx.url, headers={"X-Vigil-Signature": "v1=stale"}), client)
        await sink.deliver(make_output())
        [req] = rx.requests
        assert req.header("x-vigil-signature") is None
        assert rx.payloads[0]["id"] == "out-0001"


def test_sign_and_verify_round_trip() -> None:
    body = b'{"id":"x"}'
    signature = sign(SECRET, 1_700_000_000, body)
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    assert verify(SECRET, "1700000000", signature, body, now=1_700_000_010)
    assert verify(SECRET.decode(), "1700000000", signature, body, now=1_700_000_010)


def test_tampered_body_wrong_secret_or_timestamp_fail_verification() -> None:
    body = b'{"id":"x","payload":{"severity":"info"}}'
    signature = sign(SECRET, 1_700_000_000, body)
    now = 1_700_000_000
    assert not verify(SECRET, "1700000000", signature, body.replace(b"info", b"crit"), now=now)
    assert not verify(b"another-secret", "1700000000", signature, body, now=now)
    # The timestamp is signed too: moving it forward to dodge the staleness check breaks the signature.
    assert not verify(SECRET, "1700000100", signature, body, now=now)


@pytest.mark.parametrize(
    ("timestamp", "signature", "expected"),
    [
        ("1700000000", None, False),
        (None, "v1=00", False),
        ("", "v1=00", False),
        ("-1700000000", "v1=00", False),
        ("17e8", "v1=00", False),
        ("1700000000", "v0=00", False),
    ],
)
def test_malformed_headers_fail_verification(
    timestamp: str | None, signature: str | None, expected: bool
) -> None:
    assert verify(SECRET, timestamp, signature, b"{}", now=1_700_000_000) is expected


def test_stale_and_future_timestamps_are_rejected() -> None:
    body = b"{}"
    signature = sign(SECRET, 1_700_000_000, body)
    assert verify(SECRET, "1700000000", signature, body, now=1_700_000_000 + 300)
    assert not verify(SECRET, "1700000000", signature, body, now=1_700_000_000 + 301)
    assert not verify(SECRET, "1700000000", signature, body, now=1_700_000_000 - 301)
    assert verify(SECRET, "1700000000", signature, body, tolerance_s=3600, now=1_700_000_000 + 3000)


def test_any_of_several_signatures_may_match() -> None:
    body = b"{}"
    good = sign(SECRET, 1_700_000_000, body)
    assert verify(SECRET, "1700000000", f"v1=deadbeef, {good}", body, now=1_700_000_000)


async def test_stale_delivery_is_refused_by_the_receiver_and_is_permanent(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver(secret=SECRET) as rx:
        sink = WebhookSink(
            webhook_spec(rx.url, secret=SECRET.decode()), client, clock=lambda: time.time() - 1000
        )
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_output())
        assert info.value.status == 401 and not info.value.retryable
        [req] = rx.requests
        assert req.error == "invalid signature"
        assert not rx.verify(req)
        assert rx.verify(req, now=time.time() - 1000)


async def test_wrong_secret_is_refused(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver(secret=SECRET) as rx:
        sink = WebhookSink(webhook_spec(rx.url, secret="not-the-secret"), client)
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_output())
        assert info.value.status == 401 and not info.value.retryable


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (404, False),
        (410, False),
    ],
)
async def test_status_classification(client: httpx.AsyncClient, status: int, retryable: bool) -> None:
    async with WebhookReceiver(secret=SECRET) as rx:
        sink = WebhookSink(webhook_spec(rx.url, secret=SECRET.decode()), client)
        rx.fail_next(1, status=status, body="nope")
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_output())
        assert info.value.retryable is retryable
        assert info.value.status == status
        assert "nope" in str(info.value)


async def test_redirect_is_not_followed_and_is_permanent(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver() as rx:
        rx.fail_next(1, status=302, body="", headers={"location": "http://example.invalid/"})
        with pytest.raises(DeliveryError) as info:
            await WebhookSink(webhook_spec(rx.url), client).deliver(make_output())
        assert info.value.status == 302 and not info.value.retryable


async def test_timeout_is_retryable(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver() as rx:
        rx.delay_next(1, seconds=1.0)
        sink = WebhookSink(webhook_spec(rx.url, timeout_s=0.2), client)
        started = time.monotonic()
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_output())
        assert time.monotonic() - started < 1.0
        assert info.value.retryable and info.value.status is None
        assert "0.2s" in str(info.value)


async def test_connection_refused_is_retryable(client: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = WebhookSink(webhook_spec(f"http://127.0.0.1:{port}/hook"), client)
    with pytest.raises(DeliveryError) as info:
        await sink.deliver(make_output())
    assert info.value.retryable and info.value.status is None


async def test_retries_after_failures_carry_the_same_delivery_id(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver(secret=SECRET) as rx:
        sink = WebhookSink(webhook_spec(rx.url, secret=SECRET.decode()), client)
        rx.fail_next(2, status=503)
        for _ in range(2):
            with pytest.raises(DeliveryError):
                await sink.deliver(make_output())
        await sink.deliver(make_output())
        assert [r.status for r in rx.requests] == [503, 503, 200]
        assert {r.header("x-vigil-delivery") for r in rx.requests} == {"out-0001"}
        assert len(rx.accepted) == 1


async def test_payload_json_cannot_carry_is_a_permanent_failure(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver() as rx:
        sink = WebhookSink(webhook_spec(rx.url), client)
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_output({"count": 2**70}))
        assert not info.value.retryable
        assert rx.requests == []


async def test_wait_for_sees_deliveries_made_later(client: httpx.AsyncClient) -> None:
    async with WebhookReceiver() as rx:
        sink = WebhookSink(webhook_spec(rx.url), client)
        task = asyncio.create_task(sink.deliver(make_output()))
        [req] = await rx.wait_for(1, timeout_s=5)
        await task
        assert orjson.loads(req.body)["request_id"] == "req-abc"
        with pytest.raises(TimeoutError):
            await rx.wait_for(2, timeout_s=0.1)


def test_receiver_works_from_plain_threads() -> None:
    with WebhookReceiver(secret=SECRET) as rx:
        body = b'{"id":"t"}'
        ts = int(time.time())

        def send() -> None:
            headers = {"X-Vigil-Timestamp": str(ts), "X-Vigil-Signature": sign(SECRET, ts, body)}
            httpx.post(rx.url, content=body, headers=headers)

        thread = threading.Thread(target=send)
        thread.start()
        [req] = rx.wait_for_sync(1, timeout_s=5)
        thread.join()
        assert req.status == 200 and rx.verify(req)
        assert httpx.post(rx.url, content=body).status_code == 401


async def test_registry_builds_sinks_from_validated_specs(client: httpx.AsyncClient) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(SinkSpec)
    webhook = build_sink(adapter.validate_python({"type": "webhook", "url": "http://127.0.0.1:9/x"}), client)
    slack = build_sink(
        adapter.validate_python({"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/x"}),
        client,
    )
    assert isinstance(webhook, WebhookSink) and webhook.name == "webhook"
    assert isinstance(slack, SlackSink) and slack.name == "slack"
    assert set(SINK_TYPES) == {"webhook", "slack"}
    await webhook.aclose()
    assert not client.is_closed
