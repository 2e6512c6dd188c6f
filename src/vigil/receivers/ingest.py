"""The shared ingest path of both OTLP receivers and both signals: decode, bound memory, publish
durably.

With several records partitions (`records_partitions`), a log export goes to the partition its
message id picks (so an exporter's retry of the same content usually reaches the same partition,
where the bus recognises it), and when that partition does not acknowledge within
`publish_failover_s` (per chunk of the export; its leader is being re-elected, say) or answers
that it is unavailable, to the next one, until every partition was tried (the last one with the
bus's usual wait, so a slow but working bus is not refused sooner than with one partition); a
partition that failed is tried last for a few seconds. A full partition is backpressure, not a failure: it is answered 429 at once. All chunks
of one export go to one partition; a failed attempt is repeated whole on the next, so a record
can be stored twice (delivery is at least once). The receivers also keep the partitions' leaders
on different nodes (`Bus.spread_leaders`, at start and periodically).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import Counter

from vigil.bus.client import Bus, Headers
from vigil.bus.topology import records_subject
from vigil.errors import Backpressure, TransientError
from vigil.otlp import LOGS, TRACES, Signal, decode, decompress, is_json, split_for_bus
from vigil.receivers.admission import (
    JSON_DECODE_FACTOR,
    PROTOBUF_DECODE_FACTOR,
    Admission,
    AdmissionSettings,
    MemoryClaim,
    Pressure,
)
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RECEIVED_HEADER = "Vigil-Received-Ns"
RECORDS_HEADER = "Vigil-Records"
"""On a message that holds a whole export: how many records or spans it carries."""

ITEMS_RECEIVED = {
    LOGS.name: Counter("vigil_records_received_total", "Log records accepted onto the bus.", ["transport"]),
    TRACES.name: Counter("vigil_spans_received_total", "Spans accepted onto the bus.", ["transport"]),
}
REQUESTS_REJECTED = Counter(
    "vigil_ingest_rejected_total", "Export requests refused.", ["transport", "reason", "signal"]
)
PARTITION_FAILOVERS = Counter(
    "vigil_ingest_partition_failovers_total",
    "Log exports a records partition did not take in time (each then tries the next partition left).",
    ["partition"],
)

_BUS_ACK_TIMEOUT_S = 10.0
"""What a publish waits for the bus's acknowledgement when nothing else is said."""
AVOID_FAILED_PARTITION_S = 5.0
"""How long a partition that failed an export is tried last."""
SPREAD_LEADERS_EVERY_S = (30.0, 60.0)
"""The receivers check the partitions' leaders at a random interval in this range."""


def partition_order(first: int, avoid_until: list[float], now: float) -> list[int]:
    """The partitions to try, from `first` on in a ring, those that failed lately last."""
    count = len(avoid_until)
    order = [(first + i) % count for i in range(count)]
    if max(avoid_until) > now:
        order.sort(key=lambda partition: avoid_until[partition] > now)
    return order


@dataclass(frozen=True, slots=True)
class IngestResult:
    records: int
    """Log records or spans accepted."""
    messages: int


class Ingestor:
    """Accepts an export once it is durably on the bus, and sheds load before memory grows."""

    def __init__(
        self,
        bus: Bus,
        *,
        max_request_bytes: int,
        max_inflight_bytes: int,
        admission: AdmissionSettings | None = None,
        pressure: Pressure | None = None,
    ) -> None:
        self._bus = bus
        self._max_request = max_request_bytes
        self.admission = Admission(
            admission or AdmissionSettings(), max_inflight_bytes=max_inflight_bytes, pressure=pressure
        )
        self._partitions = bus.settings.records_partitions
        self._failover_s = bus.settings.publish_failover_s
        self._avoid_until = [0.0] * self._partitions
        self._spreader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.admission.start()
        if self._partitions > 1 and self._bus.settings.replicas > 1:
            self._spreader = asyncio.create_task(self._spread_leaders(), name="records-leaders")

    async def shutdown(self) -> None:
        if self._spreader is not None:
            await cancel_and_wait(self._spreader)
            self._spreader = None
        await self.admission.shutdown()

    @asynccontextmanager
    async def admit(self, signal: Signal, transport: str) -> AsyncIterator[MemoryClaim]:
        """A place among the exports in progress and a claim on memory, or Backpressure (429)."""
        try:
            async with self.admission.admit() as claim:
                yield claim
        except Backpressure:
            REQUESTS_REJECTED.labels(transport, "overloaded", signal.name).inc()
            raise

    async def _spread_leaders(self) -> None:
        """After a node came back, its partitions' leaders are elsewhere: give them back."""
        while True:
            await asyncio.sleep(random.uniform(*SPREAD_LEADERS_EVERY_S))
            await self._bus.spread_leaders()

    async def export(
        self,
        signal: Signal,
        project_id: str,
        body: bytes,
        *,
        content_type: str | None,
        content_encoding: str | None = None,
        transport: str = "http",
        claim: MemoryClaim | None = None,
    ) -> IngestResult:
        """Accept an export once it is on the bus. `claim` holds the memory already taken for the
        body (by the caller that read it); without one, the export is admitted here."""
        if claim is None:
            async with self.admit(signal, transport) as own:
                own.take(len(body))
                return await self.export(
                    signal,
                    project_id,
                    body,
                    content_type=content_type,
                    content_encoding=content_encoding,
                    transport=transport,
                    claim=own,
                )
        try:
            raw = decompress(body, content_encoding, self._max_request, claim.take)
            # what parsing makes of it: taken before it is made
            claim.take(len(raw) * (JSON_DECODE_FACTOR if is_json(content_type) else PROTOBUF_DECODE_FACTOR))
            decoded = decode(signal, raw, content_type)
            if decoded.records == 0:
                return IngestResult(0, 0)
            chunks = split_for_bus(decoded, self._bus.settings.max_message_bytes)
            headers = {RECEIVED_HEADER: str(time.time_ns())}
            if len(chunks) == 1:
                headers[RECORDS_HEADER] = str(decoded.records)
            prefix = project_id.encode()
            # The id is the content's hash, so an exporter's retry of the same request is
            # recognised by the bus inside its duplicate window and stored once.
            ids = [hashlib.blake2b(prefix + chunk, digest_size=16).hexdigest() for chunk in chunks]
            if self._partitions > 1 and signal is LOGS:
                await self._publish_partitioned(project_id, chunks, ids, headers)
            else:
                await self._publish(signal.subject(project_id), chunks, ids, headers, None)
        except Backpressure as exc:
            reason = "overloaded" if "memory" in exc.message else type(exc).__name__
            REQUESTS_REJECTED.labels(transport, reason, signal.name).inc()
            raise
        except Exception as exc:
            REQUESTS_REJECTED.labels(transport, type(exc).__name__, signal.name).inc()
            raise
        ITEMS_RECEIVED[signal.name].labels(transport).inc(decoded.records)
        return IngestResult(decoded.records, len(chunks))

    async def _publish(
        self, subject: str, chunks: list[bytes], ids: list[str], headers: Headers, ack_timeout_s: float | None
    ) -> None:
        if len(chunks) == 1:
            await self._bus.publish(
                subject, chunks[0], msg_id=ids[0], headers=headers, ack_timeout_s=ack_timeout_s
            )
        else:
            messages = [(subject, chunk, msg_id, headers) for chunk, msg_id in zip(chunks, ids, strict=True)]
            await self._bus.publish_many(messages, ack_timeout_s=ack_timeout_s or _BUS_ACK_TIMEOUT_S)

    async def _publish_partitioned(
        self, project_id: str, chunks: list[bytes], ids: list[str], headers: Headers
    ) -> None:
        first = int(ids[0][:8], 16) % self._partitions
        failure: TransientError | None = None
        order = partition_order(first, self._avoid_until, time.monotonic())
        for partition in order:
            subject = records_subject(project_id, partition)
            last = partition == order[-1]
            ack_timeout_s = None if last else min(self._failover_s * len(chunks), _BUS_ACK_TIMEOUT_S)
            try:
                await self._publish(subject, chunks, ids, headers, ack_timeout_s)
                return
            except Backpressure:
                raise  # the partition is full: slow the client down, don't move its load
            except TransientError as exc:
                failure = exc
                self._avoid_until[partition] = time.monotonic() + AVOID_FAILED_PARTITION_S
                PARTITION_FAILOVERS.labels(str(partition)).inc()
                log.debug("records partition failed an export", extra={"partition": partition})
        assert failure is not None
        raise failure
