"""`vigil workflows watch` over a connection that breaks: against a small server speaking HTTP and
server-sent events on loopback, which drops the first connection mid-stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.cli.test_admin import invoke

PROJECT = {"id": "p1", "name": "shop", "created_at": "2026-01-01T00:00:00+00:00"}


STEPS = [("begin", "done"), ("analyse", "done"), ("plan", "done"), ("finish", "escalated")]


def event(event_id: int) -> bytes:
    name, status = STEPS[event_id - 1]
    data = {"id": event_id, "step": name, "status": status, "at": f"2026-01-01T00:00:0{event_id}+00:00"}
    data["summary"] = {"summary": f"{name} summary"}
    return f"id: {event_id}\nevent: step\ndata: {json.dumps(data)}\n\n".encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class FlakyStream:
    """`GET /api/v1/projects`, and a workflow stream that sends the steps after `Last-Event-ID`, as
    the API does; its first answer breaks off after two steps."""

    def __init__(self) -> None:
        self.resumed_from: list[str | None] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        path = head.split()[1]
        headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        if path == "/api/v1/projects":
            body = json.dumps([PROJECT]).encode()
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            )
            writer.write(body)
        elif path == "/api/v1/projects/p1/workflows/wf-1/stream":
            last = headers.get("last-event-id")
            self.resumed_from.append(last)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            writer.write(chunk(b": ping\n\n"))
            after = int(last or 0)
            for event_id in range(after + 1, len(STEPS) + 1):
                writer.write(chunk(event(event_id)))
                if len(self.resumed_from) == 1 and event_id == 2:
                    await writer.drain()
                    writer.transport.abort()  # mid-stream: no last chunk
                    return
            writer.write(chunk(b""))
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> FlakyStream:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyStream]:
    async with FlakyStream() as server:
        yield server


async def test_watch_resumes_after_the_last_event_it_got(flaky: FlakyStream) -> None:
    result = await invoke(["workflows", "watch", "shop", "wf-1", "--api-url", flaky.url, "--token", "t"])
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["begin", "done"],
        ["analyse", "done"],
        ["plan", "done"],
        ["finish", "escalated"],
    ]
    assert flaky.resumed_from == [None, "2"]
    assert "finish summary" in result.stdout.splitlines()[-1]
