"""A client that goes away mid-body is no error of Vigil's: nothing is logged as one."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import ADMIN_TOKEN, VigilHandle


async def half_a_request(url: str, path: str, headers: dict[str, str]) -> None:
    host, port = url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Length: 100000",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + b"x" * 1000)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await writer.wait_closed()


async def test_a_client_gone_mid_body_is_not_logged_as_an_error(
    vigil: VigilHandle, caplog: pytest.LogCaptureFixture
) -> None:
    _, key = await vigil.project_with_key()
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        await half_a_request(
            vigil.receiver_url, "/v1/logs", {"X-API-Key": key, "Content-Type": "application/x-protobuf"}
        )
        await half_a_request(vigil.receiver_url, "/internal/agent-output", {"X-API-Key": key})
        await half_a_request(
            vigil.api_url,
            "/api/v1/projects",
            {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
    await asyncio.sleep(0.5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.name, r.getMessage()) for r in errors]
    # and the servers still answer
    assert (await vigil.api.get("/api/v1/projects")).status_code == 200
