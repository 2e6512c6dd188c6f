"""The record of batches handed to agents, written with group commits.

Every batch gets a row before its first POST, so that an agent's output can be checked against
the batch it answers. Rows are written in groups: one transaction per flush holds every insert and
status update that queued meanwhile, each kind as one executemany, which keeps the database off
the per-batch hot path.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from vigil.store.db import RawJson
from vigil.store.repo import Store, utcnow
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Insert:
    row: dict[str, Any]
    """Column values of the `batches` row."""
    done: asyncio.Future[int]
    """Resolves to the attempts already recorded for the batch (0 for a new one)."""


class BatchLedger:
    def __init__(self, store: Store, interval_s: float = 0.05, gather_s: float = 0.02) -> None:
        """`interval_s`: the longest a status update waits; `gather_s`: the shortest time between
        two flushes while inserts wait (a delivery's first POST waits for its row, so short)."""
        self._store = store
        self._interval = interval_s
        self._gather = gather_s
        self._pending: list[_Insert] = []
        self._statuses: dict[str, tuple[str, int, str | None]] = {}
        self._known: set[str] = set()
        self._waiter: asyncio.Future[None] | None = None
        """What the writer waits on while there is nothing to write yet."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-ledger")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._flush()

    async def record(
        self,
        request_id: str,
        project_id: str,
        pipeline: str,
        records: list[Any] | RawJson,
        represented: int,
        record_count: int | None = None,
    ) -> int:
        """Record the batch before its first attempt in this process; return the attempts already
        recorded for it (by an earlier process, before a crash), 0 when there are none.
        `records` may be their JSON as it came (then with `record_count`)."""
        if request_id in self._known:
            return 0
        now = utcnow()
        row = {
            "request_id": request_id,
            "project_id": project_id,
            "pipeline": pipeline,
            "record_count": len(records) if record_count is None else record_count,
            "represented": represented,
            "records": records,
            "status": "pending",
            "attempts": 0,
            "last_error": None,
            "created_at": now,
            "updated_at": now,
        }
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(_Insert(row, done))
        self._wake()
        attempts = await done
        if len(self._known) > 100_000:
            self._known.clear()
        self._known.add(request_id)
        return attempts

    def status(self, request_id: str, status: str, attempts: int, error: str | None = None) -> None:
        # with updates queued already, the writer has its timer (or a flush) for them: no wake-up
        first = not self._statuses
        self._statuses[request_id] = (status, attempts, error)
        if first:
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _run(self) -> None:
        """While an insert waits, a flush starts `gather_s` after the previous one started (or
        when it ends, if later): whatever queued meanwhile forms one group, status updates
        included. Status updates alone are flushed at most every interval (the first at once)."""
        last_flush = last_statuses = -self._interval
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending and not (self._statuses and loop.time() - last_statuses >= self._interval):
                # a future and a timer, not `wait_for` on an event, which makes a task per wait
                self._waiter = waiter = loop.create_future()
                timer = loop.call_later(self._interval, self._wake) if self._statuses else None
                try:
                    await waiter
                finally:
                    self._waiter = None
                    if timer is not None:
                        timer.cancel()
                continue
            wait = last_flush + self._gather - loop.time()
            if self._pending and wait > 0:
                await asyncio.sleep(wait)
            try:
                last_flush = loop.time()
                if self._statuses:
                    last_statuses = last_flush
                await self._flush()
            except Exception:
                log.exception("batch ledger write failed; retrying")
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        """Inserts, then status updates (a batch's row exists before its status changes), in one
        transaction. On failure, statuses go back to the queue (newer ones win) and the waiting
        inserts are told, so their deliveries are retried."""
        inserts, self._pending = self._pending, []
        statuses, self._statuses = self._statuses, {}
        if not inserts and not statuses:
            return
        try:
            known = await self._store.write_batches(
                [i.row for i in inserts], [(rid, *update) for rid, update in statuses.items()]
            )
        except Exception as exc:
            for item in inserts:
                if not item.done.done():
                    item.done.set_exception(exc)
            self._statuses = {**statuses, **self._statuses}
            raise
        for item in inserts:
            if not item.done.done():
                item.done.set_result(known.get(item.row["request_id"], 0))
