"""The web UI: its page at `/`, its assets under `/ui/static/`, and signing in and out
(`/ui/session`), which trades the admin token for a session cookie."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.api.session import COOKIE, Credentials, cookie_value, same_origin
from vigil.errors import Forbidden, Unauthorized
from vigil.ui import STATIC

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_UI_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=500, description="The admin token.")


class UiHeaders:
    """The UI's pages and assets are never framed, sniffed or allowed to load from elsewhere."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (scope["path"] == "/" or scope["path"].startswith("/ui/")):
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_UI_HEADERS]
            await send(message)

        await self._app(scope, receive, with_headers)


def _set_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        # the page's own origin tells when a proxy ended TLS in front of Vigil
        secure=request.url.scheme == "https" or (request.headers.get("origin") or "").startswith("https://"),
    )


def add_ui(app: FastAPI, credentials: Credentials) -> None:
    sessions = credentials.sessions
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @router.post("/ui/session")
    async def sign_in(body: SignIn, request: Request, response: Response) -> dict[str, Any]:
        if not same_origin(request.scope):
            raise Forbidden("cross-site sign-in refused: its Origin is not this server")
        expected = credentials.auth.token
        if not hmac.compare_digest(body.token.strip().encode(), expected):
            raise Unauthorized("invalid admin token")
        value, session = sessions.issue()
        _set_cookie(response, request, value, sessions.ttl_s)
        return {"csrf": session.csrf, "expires_at": session.expires_at}

    @router.get("/ui/session")
    async def current(request: Request) -> dict[str, Any]:
        session = sessions.read(cookie_value(request.scope))
        if session is None:
            raise Unauthorized("not signed in")
        return {"csrf": session.csrf, "expires_at": session.expires_at}

    @router.delete("/ui/session", status_code=204)
    async def sign_out(request: Request) -> Response:
        session = sessions.read(cookie_value(request.scope))
        response = Response(status_code=204)
        if session is not None:
            credentials.check(request.scope)  # a change: same origin and the CSRF token
            sessions.end(session)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_middleware(UiHeaders)
