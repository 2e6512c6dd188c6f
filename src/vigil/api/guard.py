"""The management API's front door: credentials are checked and bodies bounded before anything is
read, so a stranger's large body costs Vigil neither memory nor parsing.

FastAPI reads and parses a request's body before it runs the route's dependencies (the admin
check among them), so these checks run first, as ASGI middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.api.errors import error_response
from vigil.errors import Forbidden, PayloadTooLarge, Unauthorized

_DRAIN_FACTOR = 4
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Authenticate = Callable[[Scope], Awaitable[None]]
"""Raises Unauthorized (or Forbidden) when the request's credentials are missing or wrong."""


class RequestGuard:
    """Refuses a request with a body when its credentials are wrong (401) or its body is over
    `max_body_bytes` (413, by Content-Length at once, or as soon as the stream passes it)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, authenticate: Authenticate, protected: tuple[str, ...]
    ) -> None:
        self._app = app
        self._max = max_body_bytes
        self._authenticate = authenticate
        self._protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self._app(scope, receive, send)
            return
        if scope["path"].startswith(self._protected):
            try:
                await self._authenticate(scope)
            except (Unauthorized, Forbidden) as exc:
                await _answer(scope, receive, send, exc.status, exc.code, exc.message, close=True)
                return
        declared = _content_length(scope)
        if declared is not None and declared > self._max:
            too_large = PayloadTooLarge(f"request body is {declared} bytes; the limit is {self._max}")
            await _answer(
                scope,
                receive,
                send,
                too_large.status,
                too_large.code,
                too_large.message,
                close=declared > _DRAIN_FACTOR * self._max,
            )
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    # FastAPI passes its own HTTPException through body parsing to the handlers
                    raise HTTPException(413, f"request body exceeds the limit of {self._max} bytes")
            return message

        await self._app(scope, bounded_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _answer(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str, *, close: bool
) -> None:
    response: Any = error_response(status, code, message)
    if close:
        # a stranger's or a huge body is not worth reading to keep the connection: it is closed
        # (the server drains a body it did not read otherwise, which most clients need to see
        # the answer)
        response.headers["Connection"] = "close"
    await response(scope, receive, send)
