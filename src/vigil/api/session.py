"""Who may use the management API: the admin token as `Authorization: Bearer`, or the web UI's
session cookie, which the admin token opens.

A session cookie is signed with a key derived from the admin token (so every replica of the API
accepts it, and changing the token ends every session) and expires. Changes made with the cookie
need the session's CSRF token in `X-CSRF-Token`, which a page of another site cannot read or send,
and a browser's `Origin`, when it sends one, must be this server's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.types import Scope

from vigil.api.auth import AdminAuth
from vigil.api.guard import header
from vigil.errors import Forbidden

COOKIE = "vigil_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMAT = "v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Session:
    nonce: str
    expires_at: int
    csrf: str


class Sessions:
    """Issues and checks session cookies; a signed-out session is refused by this process until
    it expires (other replicas refuse it once its cookie is cleared from the browser)."""

    def __init__(self, admin_token: str, *, ttl_s: int = SESSION_TTL_S) -> None:
        self._key = hmac.new(admin_token.encode(), b"vigil-ui-session", hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self._ended: dict[str, int] = {}

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def _csrf(self, nonce: str) -> str:
        return self._sign(f"csrf.{nonce}")

    def issue(self) -> tuple[str, Session]:
        """A new session: its cookie value and what the page is told (the CSRF token)."""
        nonce = secrets.token_urlsafe(18)
        expires_at = int(time.time()) + self.ttl_s
        body = f"{_FORMAT}.{expires_at}.{nonce}"
        return f"{body}.{self._sign(body)}", Session(nonce, expires_at, self._csrf(nonce))

    def read(self, cookie_value: str | None) -> Session | None:
        if not cookie_value:
            return None
        parts = cookie_value.split(".")
        if len(parts) != 4 or parts[0] != _FORMAT or not parts[1].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3], self._sign(body)):
            return None
        expires_at, nonce = int(parts[1]), parts[2]
        if expires_at <= time.time() or nonce in self._ended:
            return None
        return Session(nonce, expires_at, self._csrf(nonce))

    def end(self, session: Session) -> None:
        now = time.time()
        self._ended = {n: at for n, at in self._ended.items() if at > now}
        self._ended[session.nonce] = session.expires_at


def cookie_value(scope: Scope, name: str = COOKIE) -> str | None:
    raw = header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is no session
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def same_origin(scope: Scope) -> bool:
    """True when the request's `Origin` (if the browser sent one) names the host it was sent to.
    The scheme is not compared: behind a proxy that ends TLS, the page is https and the request
    Vigil sees is http."""
    origin = header(scope, b"origin")
    if origin is None:
        return True
    host = (header(scope, b"host") or "").lower()
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (a sandboxed frame, a file) or anything else
    default = {"http": ":80", "https": ":443"}[parts.scheme]
    return parts.netloc.lower().removesuffix(default) == host.removesuffix(default)


class Credentials:
    """The admin token, or a session and (for a change) its CSRF token from the same origin."""

    def __init__(self, auth: AdminAuth, sessions: Sessions) -> None:
        self.auth = auth
        self.sessions = sessions

    def check(self, scope: Scope) -> None:
        authorization = header(scope, b"authorization")
        if authorization is not None:
            self.auth.check(authorization)
            return
        session = self.sessions.read(cookie_value(scope))
        if session is None:
            self.auth.check(None)  # raises: missing credentials
            return
        if scope.get("method", "GET") in SAFE_METHODS:
            return
        if not same_origin(scope):
            raise Forbidden("cross-site request refused: its Origin is not this server")
        sent = header(scope, CSRF_HEADER.lower().encode()) or ""
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise Forbidden(f"missing or wrong {CSRF_HEADER}: changes made with the session need it")
