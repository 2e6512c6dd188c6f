"""A real HTTP server on 127.0.0.1 in a background thread, recording requests and scriptable to fail.

It runs its own event loop, so one double serves async tests (`async with`), sync tests (`with`),
and code under test that runs in any thread or process alike.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson
import uvicorn

Reply = tuple[int, bytes, Mapping[str, str]]
"""Status, body and extra headers of an answer."""

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double received it, and how it answered."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Lowercase names; repeated headers joined with ", "."""
    body: bytes
    status: int
    received_at: float
    error: str | None = None
    """Why the double refused it (bad signature, invalid blocks, scripted failure), None if accepted."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class _Scripted:
    status: int | None
    """None: after the delay, answer as usual."""
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class LocalServer:
    """Base of the doubles: subclasses decide the normal answer in `answer`."""

    def __init__(self, *, port: int = 0) -> None:
        self._bind_port = port
        self._cond = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._script: deque[_Scripted] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # --- what subclasses provide -------------------------------------------------------------

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        """The normal reply to a request, and why it was refused (None when accepted)."""
        raise NotImplementedError

    def respond(
        self, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        """Like `answer`, with the path still percent-encoded and the query string (for routing doubles)."""
        return self.answer(method, urllib.parse.unquote(raw_path), headers, body)

    def failure_body(self, status: int) -> bytes:
        return orjson.dumps({"error": f"scripted failure {status}"})

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the server is not started; use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        # Binding here, before the thread starts, means the port is ours: no free-port race.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._bind_port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            lifespan="off",
            proxy_headers=False,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"{type(self).__name__}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # --- scripting and inspection ------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `count` requests with `status` (after any already scripted)."""
        raw = self.failure_body(status) if body is None else body
        data = raw.encode() if isinstance(raw, str) else raw
        with self._cond:
            for _ in range(count):
                self._script.append(_Scripted(status, data, dict(headers or {})))

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Hold the next `count` requests for `seconds` before answering as usual (to test timeouts)."""
        with self._cond:
            for _ in range(count):
                self._script.append(_Scripted(None, delay_s=seconds))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._cond:
            return list(self._requests)

    @property
    def accepted(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.error is None]

    def clear(self) -> None:
        """Forget recorded requests and any scripted replies not yet used."""
        with self._cond:
            self._requests.clear()
            self._script.clear()

    def wait_for_sync(
        self,
        count: int = 1,
        timeout_s: float = 10.0,
        predicate: Callable[[RecordedRequest], bool] | None = None,
    ) -> list[RecordedRequest]:
        """Block until `count` requests (matching `predicate`, if given) were recorded; return them."""

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if predicate is None or predicate(r)]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout_s):
                got = len(matching())
                raise TimeoutError(f"{type(self).__name__}: {got} of {count} requests after {timeout_s}s")
            return matching()

    async def wait_for(
        self,
        count: int = 1,
        timeout_s: float = 10.0,
        predicate: Callable[[RecordedRequest], bool] | None = None,
    ) -> list[RecordedRequest]:
        """`wait_for_sync` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_sync, count, timeout_s, predicate)

    # --- the ASGI app ------------------------------------------------------------------------

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        method, path = scope["method"], scope["path"]

        with self._cond:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None and scripted.status is not None:
            reply: Reply = (scripted.status, scripted.body, scripted.headers)
            error: str | None = f"scripted failure {scripted.status}"
        else:
            raw_path = scope.get("raw_path") or path.encode()
            query = scope.get("query_string", b"").decode("latin-1")
            reply, error = self.respond(method, raw_path.decode("latin-1"), query, headers, body)
        status, reply_body, reply_headers = reply

        with self._cond:
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    headers=headers,
                    body=body,
                    status=status,
                    received_at=time.time(),
                    error=error,
                )
            )
            self._cond.notify_all()

        if scripted is not None and scripted.delay_s:
            await asyncio.sleep(scripted.delay_s)
        out_headers = [(b"content-length", str(len(reply_body)).encode())]
        if not any(k.lower() == "content-type" for k in reply_headers):
            out_headers.append((b"content-type", b"text/plain; charset=utf-8"))
        out_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply_headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": reply_body})
