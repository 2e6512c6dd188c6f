"""The admin token: from VIGIL_ADMIN_TOKEN, or generated once and kept in the data directory."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from vigil.errors import Unauthorized

TOKEN_FILE = "admin-token"


def load_or_create_admin_token(data_dir: Path, configured: str | None) -> tuple[str, bool]:
    """Return the token and whether it was generated just now (so it can be shown once)."""
    if configured:
        return configured, False
    path = data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    token = "vgla_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, True


class AdminAuth:
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    @property
    def token(self) -> bytes:
        return self._token

    def check(self, authorization: str | None) -> None:
        if not authorization:
            raise Unauthorized("missing admin token: send Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            raise Unauthorized("invalid admin token")
