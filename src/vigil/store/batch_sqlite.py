"""The batch ledger's transaction on SQLite as plain DBAPI statements, on the event loop's thread.

At a steady 2,000 records/s in batches of 10, SQLAlchemy's per-statement work (the compiled-cache
lookup, an expanding IN, processing every parameter) was most of the ledger thread's CPU, more
than SQLite's own. The statements here are built once from the table, and each value goes through
the column type's own bind processor, so rows are stored exactly as SQLAlchemy stores them.

A group's transaction takes a few hundred microseconds of SQLite's own work; handing it to a
thread and back cost about as much again in wake-ups (a thread hop is ~100 µs of CPU on a small
VM), with the interpreter's lock passed to and fro while it ran. So it runs where the ledger is,
on a connection of its own that never waits: no busy wait (another connection holding the write
lock makes it fail at once, and the group goes to the store's thread, which waits there as
before) and no automatic checkpoint (a checkpoint syncs files to disk: the thread runs one at
most every `CHECKPOINT_S` instead). Either way the group is one transaction, whole or not at all.

A large group (a backlog of big batches) still goes to the thread: there SQLite's own work, which
then outweighs a hop, runs beside the event loop (it releases the interpreter's lock) rather than
taking the event loop's time from routing and delivery.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, cast

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import Engine
from sqlalchemy.pool import PoolProxiedConnection

from vigil.store.db import sqlite_locked
from vigil.store.models import Batch

log = logging.getLogger(__name__)

_BATCHES = cast(sqlalchemy.Table, Batch.__table__)
_UPDATED = ("status", "attempts", "last_error", "updated_at")

CHECKPOINT_S = 1.0
"""The longest the WAL grows, in seconds of inline writes, before the thread checkpoints it."""

INLINE_MOST_RECORDS = 256
"""The most records a group may hold to be written on the event loop's thread."""

Blocking = Callable[[], tuple[Engine, ThreadPoolExecutor]]
"""The store's blocking engine and its one thread, made on first use."""


class SqliteBatchWriter:
    def __init__(self, inline: Engine, blocking: Blocking) -> None:
        """`inline`: an engine of `vigil.store.db.create_inline_sqlite_engine`, used on the event
        loop's thread only."""
        self._inline = inline
        self._blocking = blocking
        self._checkpoint_due = 0.0
        self._checkpoint: Future[None] | None = None
        self._raw: PoolProxiedConnection | None = None
        dialect = inline.dialect
        columns = list(_BATCHES.columns)
        self._keys = [column.key for column in columns]
        self._processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns
        ]
        names = ", ".join(column.name for column in columns)
        marks = ", ".join("?" for _ in columns)
        # a row already there (a batch redelivered after a crash) keeps its row and its attempts
        self._insert = f"INSERT INTO batches ({names}) VALUES ({marks}) ON CONFLICT (request_id) DO NOTHING"
        self._update = (
            f"UPDATE batches SET {', '.join(f'{name} = ?' for name in _UPDATED)} WHERE request_id = ?"
        )
        self._time = self._processors[self._keys.index("updated_at")] or _same

    async def write(
        self,
        rows: Sequence[dict[str, Any]],
        updates: Sequence[tuple[str, str, int, str | None]],
        now: datetime,
    ) -> dict[str, int]:
        """Insert `rows`, then apply (request_id, status, attempts, error) updates, in one
        transaction; return the attempts recorded for rows that were there already."""
        loop = asyncio.get_running_loop()
        if sum(row["record_count"] for row in rows) > INLINE_MOST_RECORDS:
            return await self._in_thread(rows, updates, now)
        try:
            known = self._write_inline(rows, updates, now)
        except (sqlite3.OperationalError, sqlalchemy.exc.OperationalError) as exc:
            if not sqlite_locked(exc):
                raise
            # another connection writes: wait for it in the thread, not on the event loop
            return await self._in_thread(rows, updates, now)
        if loop.time() >= self._checkpoint_due and (self._checkpoint is None or self._checkpoint.done()):
            self._checkpoint_due = loop.time() + CHECKPOINT_S
            engine, thread = self._blocking()
            self._checkpoint = thread.submit(_checkpoint, engine)
        return known

    async def _in_thread(
        self,
        rows: Sequence[dict[str, Any]],
        updates: Sequence[tuple[str, str, int, str | None]],
        now: datetime,
    ) -> dict[str, int]:
        engine, thread = self._blocking()
        return await asyncio.get_running_loop().run_in_executor(
            thread, self.write_on, engine, rows, updates, now
        )

    async def close(self) -> None:
        """After the checkpoint under way, if any (the store's thread is shut down next)."""
        if self._checkpoint is not None:
            await asyncio.wrap_future(self._checkpoint)
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()
        self._inline.dispose()

    def _write_inline(
        self,
        rows: Sequence[dict[str, Any]],
        updates: Sequence[tuple[str, str, int, str | None]],
        now: datetime,
    ) -> dict[str, int]:
        """`write_on` on the inline engine's one connection, held from the first write on: a
        pool checkout and SQLAlchemy's transaction (and the rollback on return) took several
        times what SQLite's own commit of a small group takes."""
        if self._raw is None:
            self._raw = self._inline.raw_connection()
        connection = cast(sqlite3.Connection, self._raw.driver_connection)
        with connection:  # one transaction: committed, or rolled back on an error
            return self._statements(connection.cursor(), rows, updates, now)

    def write_on(
        self,
        engine: Engine,
        rows: Sequence[dict[str, Any]],
        updates: Sequence[tuple[str, str, int, str | None]],
        now: datetime,
    ) -> dict[str, int]:
        with engine.begin() as connection:
            return self._statements(connection.connection.cursor(), rows, updates, now)

    def _statements(
        self,
        cursor: Any,
        rows: Sequence[dict[str, Any]],
        updates: Sequence[tuple[str, str, int, str | None]],
        now: datetime,
    ) -> dict[str, int]:
        known: dict[str, int] = {}
        stamp = self._time(now)
        try:
            if rows:
                cursor.executemany(self._insert, [self._values(row) for row in rows])
                if cursor.rowcount != len(rows):
                    # some were there: their attempts (a new row's are 0 either way)
                    ids = [row["request_id"] for row in rows]
                    marks = ", ".join("?" for _ in ids)
                    cursor.execute(
                        f"SELECT request_id, attempts FROM batches WHERE request_id IN ({marks})", ids
                    )
                    known = {request_id: attempts for request_id, attempts in cursor.fetchall()}
            if updates:
                cursor.executemany(
                    self._update,
                    [(status, attempts, error, stamp, rid) for rid, status, attempts, error in updates],
                )
        finally:
            cursor.close()
        return known

    def _values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip((row[key] for key in self._keys), self._processors, strict=True)
        )


def _checkpoint(engine: Engine) -> None:
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception as exc:  # the next one tries again; SQLite's own checkpoints go on meanwhile
        log.warning("batch ledger checkpoint failed", extra={"error": str(exc)})


def _same(value: Any) -> Any:
    return value
