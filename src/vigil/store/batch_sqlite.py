"""The batch ledger's transaction on SQLite as plain DBAPI statements.

At a steady 2,000 records/s in batches of 10, SQLAlchemy's per-statement work (the compiled-cache
lookup, an expanding IN, processing every parameter) was most of the ledger thread's CPU, more
than SQLite's own. The statements here are built once from the table, and each value goes through
the column type's own bind processor, so rows are stored exactly as SQLAlchemy stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy
from sqlalchemy import Engine

from vigil.store.models import Batch

_BATCHES = cast(sqlalchemy.Table, Batch.__table__)
_UPDATED = ("status", "attempts", "last_error", "updated_at")


class SqliteBatchWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect
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

    def write(
        self,
        rows: Sequence[dict[str, Any]],
        updates: Sequence[tuple[str, str, int, str | None]],
        now: datetime,
    ) -> dict[str, int]:
        """Insert `rows`, then apply (request_id, status, attempts, error) updates, in one
        transaction; return the attempts recorded for rows that were there already."""
        known: dict[str, int] = {}
        stamp = self._time(now)
        with self._engine.begin() as connection:
            cursor = connection.connection.cursor()
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


def _same(value: Any) -> Any:
    return value
