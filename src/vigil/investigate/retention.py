"""The stored citations' retention: every hour, those older than `citation_retention_s` go.

Record and query citations are kept in the database so that an analysis can be checked later; they
are bounded in size, but not in number, so without this the table would grow for ever."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from vigil.investigate.citations import CitationStore
from vigil.store.repo import Store
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3_600.0


class CitationRetention:
    def __init__(self, store: Store, retention_s: float, *, every_s: float = SWEEP_EVERY_S) -> None:
        self._citations = CitationStore(store)
        self._retention = timedelta(seconds=retention_s)
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_forever(), name="citation-retention")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def sweep(self, now: datetime | None = None) -> int:
        deleted = await self._citations.delete_older_than((now or datetime.now(UTC)) - self._retention)
        if deleted:
            log.info("expired citations deleted", extra={"count": deleted})
        return deleted

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("citation retention sweep failed; trying again")
            await asyncio.sleep(self._every_s)
