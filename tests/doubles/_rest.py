"""Routing for the API doubles: a `LocalServer` whose answers come from handlers bound to routes.

    class ThingServer(RestServer):
        def __init__(self) -> None:
            super().__init__()
            self.route("GET", r"/things/(?P<name>[^/]+)", self._get_thing)

        def _get_thing(self, call: Call) -> Any:
            if call.params["name"] not in self.things:
                raise HttpError(404, {"message": "Not Found"})
            return self.things[call.params["name"]]          # 200, as JSON

Patterns match the whole still-encoded path, so `group%2Fproject` stays one segment; captured groups
are decoded. Handlers run under the server's lock, so tests may seed and read state from any thread.
A handler returns a JSON-able value (200), a `Response`, or raises `HttpError`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from tests.doubles._server import LocalServer, RecordedRequest, Reply

__all__ = ["Call", "HttpError", "RecordedRequest", "Response", "RestServer", "utc_iso"]

JSON_TYPE = "application/json"


def utc_iso(when: datetime | None = None, *, millis: bool = False) -> str:
    """RFC 3339 in UTC with a Z, as most of these APIs write times."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Call:
    """One routed request, as a handler sees it."""

    method: str
    path: str
    params: Mapping[str, str]
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise HttpError(400, {"message": f"body is not JSON: {exc}"}) from None

    def form(self) -> dict[str, list[str]]:
        """Query arguments and, for a form-encoded body, its fields too (as servers merge them)."""
        merged = {k: list(v) for k, v in self.query.items()}
        if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            for k, v in urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True).items():
                merged.setdefault(k, []).extend(v)
        return merged


@dataclass
class Response:
    status: int = 200
    body: Any = None
    """JSON-able, or bytes/str sent as they are."""
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by a handler: the vendor's error status and body."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    @property
    def reason(self) -> str:
        if isinstance(self.body, dict):
            for key in ("message", "error", "errorMessages", "errors"):
                if key in self.body:
                    return f"{self.status}: {self.body[key]}"
        return f"{self.status}: {self.body!r}"[:300]


Handler = Callable[[Call], Any]


def _encode(body: Any, headers: dict[str, str]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        headers.setdefault("content-type", "text/plain; charset=utf-8")
        return body.encode()
    headers.setdefault("content-type", JSON_TYPE)
    return orjson.dumps(body)


class RestServer(LocalServer):
    """A double answering from routes; unknown routes get `not_found`, refused auth `check_auth`."""

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """As `LocalServer.fail_next`, with the vendor's error body (`failure_body`) sent as JSON."""
        if headers is None and body is None and self.failure_body(status).startswith((b"{", b"[")):
            headers = {"content-type": JSON_TYPE}
        super().fail_next(count, status, body=body, headers=headers)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern), handler))

    def not_found(self, method: str, path: str) -> HttpError:
        return HttpError(404, {"message": "Not Found"})

    def check_auth(self, call: Call) -> None:
        """Raise the vendor's HttpError when `call` is not authorised."""

    def count(self, method: str, path: str) -> int:
        """Accepted requests with this method and (decoded) path."""
        return sum(1 for r in self.accepted if r.method == method and r.path == path)

    def respond(
        self, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str | None]:
        args = urllib.parse.parse_qs(query, keep_blank_values=True)
        for allowed, pattern, handler in self._routes:
            match = pattern.fullmatch(raw_path)
            if match is None or allowed != method:
                continue
            params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items() if v is not None}
            call = Call(method, urllib.parse.unquote(raw_path), params, args, headers, body)
            try:
                with self._cond:  # encoded under the lock too: handlers may return live state
                    self.check_auth(call)
                    result = handler(call)
                    response = result if isinstance(result, Response) else Response(body=result)
                    out_headers = dict(response.headers)
                    return (response.status, _encode(response.body, out_headers), out_headers), None
            except HttpError as exc:
                return (exc.status, _encode(exc.body, exc.headers), exc.headers), exc.reason
        exc = self.not_found(method, urllib.parse.unquote(raw_path))
        return (exc.status, _encode(exc.body, exc.headers), exc.headers), exc.reason
