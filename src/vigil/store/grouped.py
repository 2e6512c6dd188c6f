"""Transactions on SQLite's one writer, grouped: those waiting when the writer's thread is free
run together in one database transaction (a group commit).

Under a burst (a storm of alerts, many workflows recording their steps), each transaction alone
costs a hop to the thread and back, a BEGIN, a COMMIT (the WAL's frames written) and the write
lock taken and given back; grouped, a group pays these once. Each work runs as it would alone,
in order, seeing what the works before it wrote, as serial transactions would. Should one of a
group fail, the group is rolled back and each of its works runs again in a transaction of its
own, so only that work's caller sees its failure (works are safe to run again: a transaction
may always be retried); but when another connection kept the write lock past the busy wait,
every work of the group gets that error at once. Nothing is answered before its transaction is
committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from vigil.store.db import sqlite_locked

T = TypeVar("T")
MAX_GROUP = 64
"""Most works in one transaction: the write lock is not held long for others' processes."""

_Work = tuple[Callable[[Connection], Any], asyncio.Future[Any]]
_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


def in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as connection:
        return work(connection)


class GroupedTransactions:
    """Runs works on `engine` in `thread` (the store's one thread for SQLite's writes)."""

    def __init__(self, engine: Engine, thread: ThreadPoolExecutor, max_group: int = MAX_GROUP) -> None:
        self._engine = engine
        self._thread = thread
        self._max_group = max_group
        self._lock = threading.Lock()
        self._waiting: list[_Work] = []
        self._scheduled = False

    async def run(self, work: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._waiting.append((work, future))
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            self._thread.submit(self._next_group, loop)
        return await future

    def _next_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """One group, then the next as a new job of the thread, so that others' jobs on it (the
        batch ledger's writes) take their turn between groups."""
        with self._lock:
            group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group :]
        try:
            outcomes = self._run(group)
        except BaseException as exc:  # never a caller left waiting
            outcomes = [(future, None, exc) for _, future in group]
        with self._lock:
            more = bool(self._waiting)
            self._scheduled = more
        if more:
            self._thread.submit(self._next_group, loop)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(_deliver, outcomes)

    def _run(self, group: list[_Work]) -> list[_Outcome]:
        if len(group) > 1:
            try:
                with self._engine.begin() as connection:
                    results = [work(connection) for work, _ in group]
                return [(future, result, None) for (_, future), result in zip(group, results, strict=True)]
            except OperationalError as exc:
                if sqlite_locked(exc):  # no work's own doing: alone, each would wait for the lock again
                    return [(future, None, exc) for _, future in group]
            except Exception:  # rolled back: each alone below, so that only its caller sees it
                pass
        outcomes: list[_Outcome] = []
        for work, future in group:
            try:
                outcomes.append((future, in_transaction(self._engine, work), None))
            except Exception as exc:
                outcomes.append((future, None, exc))
        return outcomes


def _deliver(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():  # its caller is gone; what it did is committed all the same
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
