"""The shared ingest path of both OTLP receivers and both signals: decode, bound memory, publish
durably."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from prometheus_client import Counter

from vigil.bus.client import Bus
from vigil.errors import Backpressure
from vigil.otlp import LOGS, TRACES, Signal, decode, decompress, split_for_bus

RECEIVED_HEADER = "Vigil-Received-Ns"

ITEMS_RECEIVED = {
    LOGS.name: Counter("vigil_records_received_total", "Log records accepted onto the bus.", ["transport"]),
    TRACES.name: Counter("vigil_spans_received_total", "Spans accepted onto the bus.", ["transport"]),
}
REQUESTS_REJECTED = Counter(
    "vigil_ingest_rejected_total", "Export requests refused.", ["transport", "reason", "signal"]
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    records: int
    """Log records or spans accepted."""
    messages: int


class Ingestor:
    """Accepts an export once it is durably on the bus, and sheds load before memory grows."""

    def __init__(self, bus: Bus, *, max_request_bytes: int, max_inflight_bytes: int) -> None:
        self._bus = bus
        self._max_request = max_request_bytes
        self._max_inflight = max_inflight_bytes
        self._inflight = 0

    async def export(
        self,
        signal: Signal,
        project_id: str,
        body: bytes,
        *,
        content_type: str | None,
        content_encoding: str | None = None,
        transport: str = "http",
    ) -> IngestResult:
        size = len(body)
        # One bound for both signals: it is the process's memory that it protects.
        if self._inflight + size > self._max_inflight:
            REQUESTS_REJECTED.labels(transport, "overloaded", signal.name).inc()
            raise Backpressure("ingest is over its in-flight limit; retry later", retry_after=1.0)
        self._inflight += size
        try:
            raw = decompress(body, content_encoding, self._max_request)
            decoded = decode(signal, raw, content_type)
            if decoded.records == 0:
                return IngestResult(0, 0)
            chunks = split_for_bus(decoded, self._bus.settings.max_message_bytes)
            subject = signal.subject(project_id)
            headers = {RECEIVED_HEADER: str(time.time_ns())}
            prefix = project_id.encode()
            # The id is the content's hash, so an exporter's retry of the same request is
            # recognised by the bus inside its duplicate window and stored once.
            messages = [
                (subject, chunk, hashlib.blake2b(prefix + chunk, digest_size=16).hexdigest(), headers)
                for chunk in chunks
            ]
            if len(messages) == 1:
                await self._bus.publish(subject, chunks[0], msg_id=messages[0][2], headers=headers)
            else:
                await self._bus.publish_many(messages)
        except Exception as exc:
            REQUESTS_REJECTED.labels(transport, type(exc).__name__, signal.name).inc()
            raise
        finally:
            self._inflight -= size
        ITEMS_RECEIVED[signal.name].labels(transport).inc(decoded.records)
        return IngestResult(decoded.records, len(messages))
