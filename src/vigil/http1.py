"""HTTP/1.1 POSTs on kept-alive connections: the one exchange every delivery makes.

A delivery posts a body and reads the status and the first bytes of the answer. aiohttp's general
request machinery (its session, request and response objects, timers, traces, cookie and redirect
handling) cost about 230 µs of CPU per POST on a small VM; writing the request in one call and
parsing the answer with httptools (the parser uvicorn serves with) costs about a quarter of that
(`bench/http_clients.py`). At 2,000 records/s in batches of 10 the difference was about an eighth
of `vigil up`'s CPU.

What a delivery needs from a client is kept: a pool of idle connections per origin, closed after
`IDLE_S`; TLS with the system's trust store; a host name resolved here and every address it
resolves to checked against the outbound policy before one of them is connected to (a connection
made under an older policy is not reused); one deadline over the whole exchange; redirects not
followed; credentials in the URL sent as Basic authorization; header values that would split the
request refused.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httptools
from yarl import URL

from vigil.outbound_policy import OutboundPolicy, ip_address_in
from vigil.specs import FRAMING_HEADERS

IDLE_S = 15.0
"""How long an idle connection is kept for the next exchange (aiohttp's default keep-alive)."""

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class AnswerError(ConnectionError):
    """The connection failed or closed before a whole answer came (retryable)."""

    def __init__(self, message: str, *, unanswered: bool = False) -> None:
        super().__init__(message)
        self.unanswered = unanswered
        """Closed before any byte of an answer came."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    head: bytes
    """The body's first bytes, at most the limit asked for."""


@dataclass(frozen=True, slots=True)
class _Origin:
    tls: bool
    host: str
    port: int


class _Connection(asyncio.Protocol):
    """One connection and the exchange under way on it, if any."""

    def __init__(self, policy_version: tuple[int, int]) -> None:
        self.transport: asyncio.Transport | None = None
        self.policy_version = policy_version
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._status = 0
        self._limit = 0
        self._drain = 0
        self._head = bytearray()
        self._received = 0
        self._parser_started = False
        """Whether a byte of the answer to the exchange under way has come."""

    def begin(self, waiter: asyncio.Future[Answer], limit: int, drain: int) -> None:
        self._waiter = waiter
        self._limit, self._drain = limit, drain
        self._status = self._received = 0
        self._head.clear()
        self.reusable = False
        self._parser_started = False

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._status >= 200:
            # an answer whose end is the connection's end: its status line has come whole
            self._finish()
        else:
            unanswered = self._status == 0 and not self._parser_started
            message = f"the connection closed before an answer came{_cause(exc)}"
            self._fail(AnswerError(message, unanswered=unanswered))

    def data_received(self, data: bytes) -> None:
        self._parser_started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(AnswerError(f"a malformed answer: {exc}"))
            self.close()

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        room = self._limit - len(self._head)
        if room > 0:
            self._head += body[:room]
        self._received += len(body)
        if self._received > self._drain:
            self._finish()  # a long answer is not read to its end: the connection goes
            self.close()

    def on_message_complete(self) -> None:
        if self._status < 200:  # an interim answer (103 Early Hints): the final one follows
            self._status = 0
            return
        self.reusable = self._parser.should_keep_alive()
        self._finish()

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(self._status, bytes(self._head)))

    def _fail(self, error: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


def _cause(exc: Exception | None) -> str:
    return f" ({type(exc).__name__}: {exc})" if exc is not None else ""


def _expire(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Http1Pool:
    """Kept-alive connections by origin, at most `max_connections` exchanges at a time."""

    def __init__(self, policy: OutboundPolicy, *, max_connections: int, idle_s: float = IDLE_S) -> None:
        self._policy = policy
        self._max_connections = max_connections
        self._idle_s = idle_s
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._tls: ssl.SSLContext | None = None
        self._origins: dict[URL, tuple[_Origin, bytes, bool]] = {}
        """By URL: its origin, the request's start up to the Content-Length value, and whether the
        URL holds credentials."""
        self._names: set[str] = set()
        """Header names seen valid."""
        self._closed = False

    async def post(
        self, url: URL, body: bytes, headers: Mapping[str, str], *, timeout_s: float, limit: int, drain: int
    ) -> Answer:
        """POST `body` and return the status with the answer's first `limit` bytes. An answer longer
        than `drain` is not read further. Raises ValueError for a URL or header this cannot send,
        `OutboundRefused`, TimeoutError, or `AnswerError` (OSError) when no whole answer came."""
        origin, start, credentials = self._origin(url)
        request = b"%s%d\r\n%s\r\n%s" % (start, len(body), self._fields(headers, credentials), body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        slots = self._slots
        if slots.locked():
            async with asyncio.timeout_at(deadline):
                await slots.acquire()
        else:
            await slots.acquire()
        try:
            connection = self._take(origin, loop.time())
            if connection is not None:
                try:
                    return await self._exchange(origin, connection, request, limit, drain, deadline)
                except AnswerError as exc:
                    if not exc.unanswered:
                        raise
                    # A kept-alive connection the server closed as the request went out (its idle
                    # timeout): sent once more on a new connection. The request may have been
                    # taken; deliveries are at least once, and the agent protocol's request id
                    # names a repeat.
            async with asyncio.timeout_at(deadline):
                connection = await self._connect(origin)
            return await self._exchange(origin, connection, request, limit, drain, deadline)
        finally:
            slots.release()

    async def _exchange(
        self,
        origin: _Origin,
        connection: _Connection,
        request: bytes,
        limit: int,
        drain: int,
        deadline: float,
    ) -> Answer:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Answer] = loop.create_future()
        connection.begin(waiter, limit, drain)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            assert connection.transport is not None
            connection.transport.write(request)
            answer = await waiter
        except BaseException:
            connection.close()  # an exchange left in an unknown state is not continued
            raise
        finally:
            timer.cancel()
        if connection.reusable and not connection.closed and not self._closed:
            self._put(origin, connection, loop)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _origin(self, url: URL) -> tuple[_Origin, bytes, bool]:
        """What `_origins` keeps for `url`, made on its first POST."""
        found = self._origins.get(url)
        if found is not None:
            return found
        if url.scheme not in ("http", "https"):
            raise ValueError(f"{url.scheme or 'no'} scheme: only http and https are posted to")
        if not url.host:
            raise ValueError("no host")
        tls = url.scheme == "https"
        port = url.port or (443 if tls else 80)
        host = url.raw_host or url.host
        authority = f"[{host}]" if ":" in host else host
        if url.explicit_port and port != (443 if tls else 80):
            authority = f"{authority}:{port}"
        target = url.raw_path_qs or "/"
        start = f"POST {target} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
        credentials = url.user is not None or url.password is not None
        if credentials:
            # as aiohttp sends a URL's credentials: Basic, Latin-1
            pair = f"{url.user or ''}:{url.password or ''}".encode("latin-1")
            start += b"Authorization: Basic %s\r\n" % base64.b64encode(pair)
        start += b"Content-Length: "
        if len(self._origins) >= 1024:
            self._origins.clear()
        found = self._origins[url] = (_Origin(tls, host, port), start, credentials)
        return found

    def _fields(self, headers: Mapping[str, str], credentials: bool) -> bytes:
        lines = []
        for name, value in headers.items():
            if name not in self._names:
                if not _TOKEN.fullmatch(name):
                    raise ValueError(f"header name {name!r} is not a token")
                if name.lower() in FRAMING_HEADERS:
                    raise ValueError(f"header {name!r} is the client's own")
                self._names.add(name)
            if credentials and name.lower() == "authorization":
                raise ValueError("an Authorization header and credentials in the URL: give one")
            lines.append(f"{name}: {value}\r\n")
        values = "".join(headers.values())
        if "\r" in values or "\n" in values or "\0" in values:
            raise ValueError("a header value holds a line break or NUL")
        return "".join(lines).encode("utf-8")

    def _take(self, origin: _Origin, now: float) -> _Connection | None:
        connections = self._idle.get(origin)
        version = self._policy.version
        while connections:
            connection = connections.pop()
            if connection.closed:
                continue
            if connection.policy_version != version or now - connection.idle_since > self._idle_s:
                connection.close()
                continue
            return connection
        return None

    def _put(self, origin: _Origin, connection: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        connection.idle_since = loop.time()
        self._idle.setdefault(origin, []).append(connection)
        if self._sweep is None:
            self._sweep = loop.call_later(self._idle_s, self._close_expired)

    def _close_expired(self) -> None:
        self._sweep = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for origin, connections in list(self._idle.items()):
            kept = [c for c in connections if not c.closed and now - c.idle_since <= self._idle_s]
            for connection in connections:
                if connection not in kept:
                    connection.close()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]
        if self._idle:
            self._sweep = loop.call_later(self._idle_s, self._close_expired)

    async def _connect(self, origin: _Origin) -> _Connection:
        """Every address the host resolves to is checked before one of them is connected to, so
        nothing changes between the check and the connection."""
        loop = asyncio.get_running_loop()
        version = self._policy.version
        literal = ip_address_in(origin.host)
        if literal is not None:
            addresses = [(literal, origin.host)]
        else:
            found = await loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
            addresses = [(a, str(info[4][0])) for info in found if (a := ip_address_in(str(info[4][0])))]
            if not addresses:
                raise AnswerError(f"{origin.host} resolved to no address")
        self._policy.check(origin.host, origin.port, [address for address, _ in addresses])
        tls = self._tls_context() if origin.tls else None
        last: OSError | None = None
        for _, text in dict.fromkeys(addresses):
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(version),
                    text,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
            except OSError as exc:
                last = exc
                continue
            return connection
        assert last is not None
        raise last

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls
