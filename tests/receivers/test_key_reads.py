"""Project keys resolved for a burst of requests: concurrent requests with a key not held share one
read of the database; a revocation's invalidation is never undone by a read begun before it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlalchemy import event

from vigil.errors import Unauthorized
from vigil.receivers.keys import KeyResolver
from vigil.store.repo import Store


def count_key_reads(store: Store) -> list[str]:
    reads: list[str] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "api_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", executed)
    return reads


async def test_a_burst_with_a_key_not_held_reads_it_once(store: Store) -> None:
    project = await store.create_project("burst")
    _, key = await store.create_key(project.id, "alerts")
    reads = count_key_reads(store)
    keys = KeyResolver(store, ttl_s=60.0)
    found = await asyncio.gather(*(keys.project_for(key) for _ in range(50)))
    assert found == [project.id] * 50
    assert len(reads) == 1
    assert await keys.project_for(key) == project.id  # held from here on
    assert len(reads) == 1
    with pytest.raises(Unauthorized):
        await asyncio.gather(*(keys.project_for("vk_not-a-key") for _ in range(5)))
    assert len(reads) == 2


async def test_a_read_begun_before_an_invalidation_is_not_kept(store: Store) -> None:
    project = await store.create_project("revoked")
    row, key = await store.create_key(project.id, "alerts")
    keys = KeyResolver(store, ttl_s=60.0)
    before = asyncio.ensure_future(keys.project_for(key))
    await asyncio.sleep(0)  # its read has begun
    await store.revoke_key(project.id, row.id)
    keys.invalidate()
    with pytest.raises(Unauthorized):
        await keys.project_for(key)
    with contextlib.suppress(Unauthorized):
        await before  # began before the revocation: may see the key still valid
    with pytest.raises(Unauthorized):
        await keys.project_for(key)
