"""Resolves project API keys to projects, with a short cache so the ingest path skips the database."""

from __future__ import annotations

import time

from vigil.errors import Unauthorized
from vigil.store.repo import Store, hash_key


def key_from_headers(x_api_key: str | None, authorization: str | None) -> str:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    raise Unauthorized("missing API key: send it in X-API-Key or Authorization: Bearer")


class KeyResolver:
    def __init__(self, store: Store, ttl_s: float) -> None:
        self._store = store
        self._ttl = ttl_s
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def project_for(self, key: str) -> str:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            project_id = cached[0]
        else:
            project_id = await self._store.project_for_key(key)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (project_id, now + self._ttl)
        if project_id is None:
            raise Unauthorized("invalid or revoked API key")
        return project_id

    def invalidate(self) -> None:
        self._cache.clear()
