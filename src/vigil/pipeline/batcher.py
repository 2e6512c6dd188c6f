"""Collects one pipeline's records into batches of at most `max_records` (and about `max_bytes`),
waiting at most `max_wait_ms` after a batch's first record. Each record carries the ticket of the bus message it
came from; a message is acknowledged once all its records are in published batches."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from nats.aio.msg import Msg

from vigil.bus.topology import RECORDS_STREAM
from vigil.records import FlatRecord


@dataclass(slots=True, eq=False)
class Ticket:
    """One records message from the bus and how many of its records still await a batch."""

    msg: Msg | None
    sequence: int
    stream: str = RECORDS_STREAM
    """The stream of `sequence`: the sequences of different streams overlap."""
    pending: int = 0
    failed: bool = False


_ticket_of = itemgetter(0)
_index_of = itemgetter(1)


@dataclass(slots=True)
class Batch:
    project_id: str
    pipeline: str
    records: list[FlatRecord] = field(default_factory=list)
    origins: list[tuple[Ticket | None, int | str]] = field(default_factory=list)
    """Per record: its bus message and index there, or (None, a key) for a deduplication roll-up."""
    approx_bytes: int = 0
    """What the records' JSON is estimated to take (the exact size is checked on publishing)."""

    def request_id(self) -> str:
        """Derived from where the records came from (stream, sequence, index), so a batch rebuilt
        identically after a redelivery gets the same id and the bus deduplicates it, and batches
        of different records never share one. (VIGIL_RECORDS's name is left out, as before
        partitions.)"""
        # one update of the parts joined: the same digest as one update per part, for less;
        # a batch's records come in runs from one message, each run's indexes joined in one go
        parts = [f"{self.project_id}/{self.pipeline}"]
        append = parts.append
        for ticket, run in groupby(self.origins, _ticket_of):
            if ticket is None:
                prefix = "/x:"
            elif ticket.stream == RECORDS_STREAM:
                prefix = f"/{ticket.sequence}:"
            else:
                prefix = f"/{ticket.stream}:{ticket.sequence}:"
            append(prefix)
            append(prefix.join(map(str, map(_index_of, run))))
        return hashlib.blake2b("".join(parts).encode(), digest_size=16).hexdigest()

    @property
    def represented(self) -> int:
        """Received records this batch stands for: deduplicated items carry their count."""
        counts = [r["count"] for r in self.records if "count" in r]
        return len(self.records) + sum(int(count) for count in counts) - len(counts)

    def payload(self) -> dict[str, Any]:
        """The bus message's content; "records" last, after scalars only, with their count, so a
        deliverer can cut the records' JSON out of the message without decoding them (see
        `vigil.pipeline.agent_workers.split_records`)."""
        return {
            "request_id": self.request_id(),
            "project_id": self.project_id,
            "pipeline": self.pipeline,
            "represented": self.represented,
            "record_count": len(self.records),
            "records": self.records,
        }


Emit = Callable[[Batch], None]


class Batcher:
    def __init__(
        self,
        project_id: str,
        pipeline: str,
        max_records: int,
        max_wait_ms: int,
        emit: Emit,
        max_bytes: int | None = None,
    ) -> None:
        self.project_id = project_id
        self.pipeline = pipeline
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_wait_s = max_wait_ms / 1000
        self._emit = emit
        self._open: Batch | None = None
        self._timer: asyncio.TimerHandle | None = None

    def add(self, record: FlatRecord, ticket: Ticket | None, index: int | str, size: int = 0) -> None:
        batch = self._open
        if batch is None:
            batch = self._open = Batch(self.project_id, self.pipeline)
            self._timer = asyncio.get_running_loop().call_later(self.max_wait_s, self.flush)
        batch.records.append(record)
        batch.origins.append((ticket, index))
        batch.approx_bytes += size
        if ticket is not None:
            ticket.pending += 1
        if len(batch.records) >= self.max_records or (
            self.max_bytes is not None and batch.approx_bytes >= self.max_bytes
        ):
            self.flush()

    def flush(self) -> None:
        batch, self._open = self._open, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if batch is not None and batch.records:
            self._emit(batch)

    @property
    def buffered(self) -> int:
        return len(self._open.records) if self._open is not None else 0
