"""A local HTTP server for the workflow benchmark's `http.request` actions: it answers 200 at once
and notes when each `Idempotency-Key` first arrived (the bench's monotonic clock), on an event
loop of its own in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn
import uvloop


class ActionReceiver:
    """An HTTP server that answers 200 at once and notes when each `Idempotency-Key` arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.calls = 0
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-actions", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = time.monotonic()
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        self.calls += 1
        key = dict(scope["headers"]).get(b"idempotency-key", b"").decode()
        self.arrivals.setdefault(key, arrived)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def _start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(self, lifespan="off", log_level="warning", access_log=False)
        )
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(3000):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the action receiver did not start")

    async def _stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def __enter__(self) -> ActionReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
