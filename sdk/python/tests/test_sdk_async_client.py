from __future__ import annotations

import time

import pytest
from fake_vigil_server import FakeVigil
from vigil_sdk import AsyncGlassFlow, AsyncVigil, VigilAPIError, VigilConnectionError


async def test_async_send_returns_the_answer(vigil_server: FakeVigil) -> None:
    async with AsyncVigil("key-a", vigil_server.url) as client:
        answer = await client.send_output({"summary": "s"}, "req-a1")

    assert answer == {"id": "out-1", "request_id": "req-a1", "status": "accepted"}
    assert vigil_server.received[0].headers["x-api-key"] == "key-a"
    assert vigil_server.received[0].body == {"request_id": "req-a1", "payload": {"summary": "s"}}


async def test_async_retries_with_the_same_key_and_honours_retry_after(vigil_server: FakeVigil) -> None:
    vigil_server.then(503, {"error": "unavailable", "message": "x"}, {"Retry-After": "0.2"})
    vigil_server.then(503, {"error": "unavailable", "message": "x"})
    async with AsyncVigil("k", vigil_server.url, backoff=0.001) as client:
        started = time.monotonic()
        await client.send_output({}, "req-a2")
        elapsed = time.monotonic() - started

    keys = {r.headers["idempotency-key"] for r in vigil_server.received}
    assert len(vigil_server.received) == 3
    assert len(keys) == 1
    assert elapsed >= 0.2


async def test_async_400_is_not_retried(vigil_server: FakeVigil) -> None:
    vigil_server.then(422, {"error": "validation_error", "message": "payload must be an object"})
    client = AsyncVigil("k", vigil_server.url, backoff=0.001)
    with pytest.raises(VigilAPIError) as caught:
        await client.send_output({}, "req-a3")
    await client.aclose()

    assert (caught.value.status, caught.value.code, caught.value.retryable) == (
        422,
        "validation_error",
        False,
    )
    assert len(vigil_server.received) == 1


async def test_async_connection_refused_raises_after_retries(closed_port_url: str) -> None:
    async with AsyncGlassFlow(api_key="k", endpoint=closed_port_url, max_retries=2, backoff=0.001) as client:
        with pytest.raises(VigilConnectionError) as caught:
            await client.send_output({}, "req-a4")

    assert caught.value.retryable is True
    assert closed_port_url in caught.value.message
