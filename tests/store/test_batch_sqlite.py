"""The batch ledger's writes on SQLite: on the event loop's thread, never waiting there for a lock."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy.exc

from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store, utcnow
from vigil.store.sealing import SecretBox, generate_key


def _row(request_id: str, project_id: str) -> dict[str, object]:
    now = utcnow()
    return {
        "request_id": request_id,
        "project_id": project_id,
        "pipeline": "all",
        "record_count": 1,
        "represented": 1,
        "records": [{"body": request_id}],
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    await upgrade(url)
    opened = Store(create_engine(url), SecretBox([generate_key()]))
    yield opened
    await opened.close()


async def test_a_write_while_another_connection_holds_the_lock_waits_off_the_event_loop(
    tmp_path: Path, store: Store
) -> None:
    project = await store.create_project("ledger")
    await store.write_batches([_row("before", project.id)], [])
    other = sqlite3.connect(tmp_path / "vigil.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's write lock
    write = asyncio.create_task(
        store.write_batches([_row("during", project.id)], [("before", "delivered", 1, None)])
    )
    # the event loop goes on meanwhile: the write waits in the store's thread
    started = time.monotonic()
    for _ in range(10):
        await asyncio.sleep(0.02)
    assert time.monotonic() - started < 1.0
    assert not write.done()
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(write, 30) == {}
    before, during = await store.get_batch("before"), await store.get_batch("during")
    assert before is not None and (before.status, before.attempts) == ("delivered", 1)
    assert during is not None and during.records == [{"body": "during"}]


async def test_a_failed_group_leaves_nothing_behind(tmp_path: Path, store: Store) -> None:
    project = await store.create_project("ledger")
    broken = _row("broken", project.id)
    broken["pipeline"] = None  # NOT NULL: the insert fails after the first row went in
    with pytest.raises((sqlite3.IntegrityError, sqlalchemy.exc.IntegrityError)):
        await store.write_batches([_row("first", project.id), broken], [])
    assert await store.get_batch("first") is None
    # and the connection is fine for the next group
    await store.write_batches([_row("next", project.id)], [])
    assert await store.get_batch("next") is not None


async def test_the_wal_is_checkpointed_while_the_ledger_writes(tmp_path: Path, store: Store) -> None:
    project = await store.create_project("ledger")
    wal = tmp_path / "vigil.db-wal"
    for i in range(40):
        await store.write_batches([_row(f"b-{i}", project.id)], [])
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    # a checkpoint copied the WAL's pages into the database file and the WAL started over
    # (it is reused from its start, not grown page after page)
    checked = sqlite3.connect(tmp_path / "vigil.db")
    busy, log_pages, checkpointed = checked.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    checked.close()
    assert busy == 0 and log_pages < 40 * 3, (log_pages, checkpointed, wal.stat().st_size)


async def test_a_large_group_is_written_whole(tmp_path: Path, store: Store) -> None:
    # more records than the event loop's thread takes: the store's thread writes the group
    project = await store.create_project("ledger")
    rows = [_row(f"big-{i}", project.id) for i in range(3)]
    for row in rows:
        row["record_count"] = 100
        row["records"] = [{"body": f"{row['request_id']}-{n}"} for n in range(100)]
    await store.write_batches(rows[:1], [("big-0", "retrying", 2, "HTTP 503")])
    known = await store.write_batches(rows, [("big-0", "delivered", 3, None)])
    assert known.get("big-0") == 2 and not any(known.get(f"big-{i}") for i in (1, 2))
    for i in range(3):
        batch = await store.get_batch(f"big-{i}")
        assert batch is not None and len(batch.records) == 100
    first = await store.get_batch("big-0")
    assert first is not None and first.status == "delivered"
