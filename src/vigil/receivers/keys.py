"""Resolves project API keys to projects, with a short cache so the ingest path skips the database.
Concurrent requests with a key not held share one read (a burst of alerts is one query, not one
per alert)."""

from __future__ import annotations

import asyncio
import time
from functools import partial

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
        self._reads: dict[str, asyncio.Future[str | None]] = {}

    async def project_for(self, key: str) -> str:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            project_id = cached[0]
        else:
            project_id = await self._read(key, digest)
        if project_id is None:
            raise Unauthorized("invalid or revoked API key")
        return project_id

    async def _read(self, key: str, digest: str) -> str | None:
        read = self._reads.get(digest)
        if read is None or read.get_loop() is not asyncio.get_running_loop():
            read = self._reads[digest] = asyncio.ensure_future(self._store.project_for_key(key))
            read.add_done_callback(partial(self._held, digest))
        # shielded: one caller cancelled must not cancel the read the others wait for
        return await asyncio.shield(read)

    def _held(self, digest: str, read: asyncio.Future[str | None]) -> None:
        if self._reads.get(digest) is not read:
            return  # invalidated meanwhile: the answer may be stale, so it is not kept
        del self._reads[digest]
        if read.cancelled() or read.exception() is not None:
            return
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (read.result(), time.monotonic() + self._ttl)

    def invalidate(self) -> None:
        self._cache.clear()
        self._reads.clear()
