"""Each project's workflow policy and runbooks, kept in the process for a moment: every alert's
workflow reads them in several steps, and reading, decrypting and validating them each time was a
good part of a workflow's cost.

A change made in this process (`WorkflowStore.put_policy`, `WorkflowRepo.put_runbook` and
`delete_runbook`) is seen at once; one made by another process (replicas on one PostgreSQL) within
`TTL_S`. Concurrent readers of a missing entry share one read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

T = TypeVar("T")

TTL_S = 2.0
"""Longest another process's change to a policy or a runbook goes unseen here."""


class ConfigCache:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self._ttl = ttl_s
        self._entries: dict[tuple[str, str], tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, kind: str, project_id: str, load: Callable[[], Awaitable[T]]) -> T:
        key = (kind, project_id)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now or entry[1].get_loop() is not asyncio.get_running_loop():
            entry = (now + self._ttl, asyncio.ensure_future(load()))
            self._entries[key] = entry
        try:
            # shielded: one reader cancelled must not cancel the read the others wait for
            value: T = await asyncio.shield(entry[1])
        except Exception:
            if self._entries.get(key) is entry:
                del self._entries[key]
            raise
        return value

    def peek(self, kind: str, project_id: str) -> Any:
        """What is held for `kind` of the project, read and still fresh, or None."""
        entry = self._entries.get((kind, project_id))
        if entry is None or entry[0] <= time.monotonic() or not entry[1].done() or entry[1].exception():
            return None
        return entry[1].result()

    def forget(self, project_id: str, kind: str | None = None) -> None:
        """After a change: the next read (of `kind`, or of everything of the project) goes to the
        database."""
        for key in [k for k in self._entries if k[1] == project_id and kind in (None, k[0])]:
            del self._entries[key]


_caches: WeakKeyDictionary[object, ConfigCache] = WeakKeyDictionary()


def config_cache(store: object) -> ConfigCache:
    """The cache of one store (one database), shared by all its readers in the process."""
    cache = _caches.get(store)
    if cache is None:
        cache = _caches[store] = ConfigCache()
    return cache
