"""A local agent for the benchmarks: a real HTTP server (uvicorn) that takes batches on any path,
answers 200 at once and notes when each batch arrived."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any

import orjson
import uvicorn
import uvloop

SENT_KEY = "bench.sent_ns"


RECORD_KEY = b'"resourceAttributes":'
"""Once in every flat record, at its top level (inside a JSON string a quote is escaped)."""


class RecordingAgent:
    """An agent that answers 200 at once, counts records, and keeps (receipt - send) of each
    record that carries its send time in the `bench.sent_ns` attribute.

    With `decode=False` it does not parse the batches (the benchmarks that only count would
    otherwise spend a good part of a core, on the cores Vigil is measured on, decoding JSON):
    it counts each batch's records by their one top-level key, and counts a batch delivered again
    under the same `X-Request-ID` (delivery is at least once) apart, in `repeated_batches`."""

    def __init__(self, *, decode: bool = True) -> None:
        self.decode = decode
        self.latencies_ms: list[tuple[int, float]] = []  # (sent_ns, latency_ms)
        self.batches = 0
        self.records = 0
        self.repeated_batches = 0
        self._request_ids: set[bytes] = set()
        self.batch_sizes: list[int] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        received = time.time_ns()
        data = b"".join(chunks)
        if not self.decode:
            request_id = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
            if request_id in self._request_ids:
                self.repeated_batches += 1
            else:
                self._request_ids.add(request_id)
                count = data.count(RECORD_KEY)
                self.batches += 1
                self.batch_sizes.append(count)
                self.records += count
            await _answer(send)
            return
        records = orjson.loads(data)
        self.batches += 1
        self.batch_sizes.append(len(records))
        self.records += len(records)
        for record in records:
            stamp = record.get("attributes", {}).get(SENT_KEY)
            if stamp is not None:
                sent = int(stamp)
                self.latencies_ms.append((sent, (received - sent) / 1e6))
        await _answer(send)

    async def start(self) -> None:
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; with
        # proto 0 the answer's header and body writes meet Nagle and delayed ACK (+40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, lifespan="off", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(1000):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the recording agent did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _answer(send: Any) -> None:
    body = b'{"status":"ok"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AgentThread:
    """A `RecordingAgent` on its own event loop in a background thread, for synchronous callers."""

    def __init__(self, *, decode: bool = True) -> None:
        self.agent = RecordingAgent(decode=decode)
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-agent", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.agent.port}/process"

    def __enter__(self) -> AgentThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.agent.start(), self._loop).result(30)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.agent.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
