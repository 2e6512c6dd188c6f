"""The detector's side of the evidence archive: signals queued without waiting, written in the
background, and a retention sweep at start and every `sweep_every_s`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter

from vigil.detect.archive import EvidenceArchive

if TYPE_CHECKING:
    from vigil.detect.signals import Signal

__all__ = ["WRITES", "EvidenceRecorder"]

log = logging.getLogger(__name__)

WRITES = Counter(
    "vigil_evidence_writes_total", "Evidence documents archived, by result (ok, error, dropped).", ["result"]
)


class EvidenceRecorder:
    """The detector's side: signals queued without waiting, written in the background, and a
    retention sweep at start and every `sweep_every_s`. A full queue drops (and counts) signals
    rather than hold up the detector; writes that fail are logged and counted."""

    def __init__(
        self,
        archive: EvidenceArchive,
        *,
        max_pending: int = 1024,
        sweep_every_s: float = 3600.0,
        write_timeout_s: float = 60.0,
        drain_timeout_s: float = 5.0,
    ) -> None:
        self.archive = archive
        self._queue: asyncio.Queue[Signal] = asyncio.Queue(max_pending)
        self._sweep_every_s = sweep_every_s
        self._write_timeout_s = write_timeout_s
        self._drain_timeout_s = drain_timeout_s
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, signals: Iterable[Signal]) -> None:
        for signal in signals:
            try:
                self._queue.put_nowait(signal)
            except asyncio.QueueFull:
                WRITES.labels("dropped").inc()

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="evidence-writer"),
            asyncio.create_task(self._sweep_loop(), name="evidence-sweep"),
        ]

    async def shutdown(self) -> None:
        if not self._tasks:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), self._drain_timeout_s)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _write_loop(self) -> None:
        while True:
            signal = await self._queue.get()
            try:
                await asyncio.wait_for(self.archive.put(signal), self._write_timeout_s)
                WRITES.labels("ok").inc()
            except Exception:
                WRITES.labels("error").inc()
                log.exception(
                    "evidence could not be archived",
                    extra={"fingerprint": signal.fingerprint, "archive": self.archive.url},
                )
            finally:
                self._queue.task_done()

    async def _sweep_loop(self) -> None:
        while True:
            try:
                removed = await self.archive.sweep(time.time())
                if removed:
                    log.info("evidence swept", extra={"removed": removed, "archive": self.archive.url})
            except Exception:
                log.exception("evidence sweep failed", extra={"archive": self.archive.url})
            await asyncio.sleep(self._sweep_every_s)
