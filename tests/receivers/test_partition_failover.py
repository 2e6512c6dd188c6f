"""A receiver's publish to records partitions: the partition a message id picks, the next one when
it fails, a full partition answered at once, and one partition exactly as before partitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from tests.logs_factory import export_bytes
from vigil.bus.client import Bus, Headers
from vigil.errors import Backpressure, TransientError
from vigil.otlp import LOGS, PROTOBUF, TRACES
from vigil.receivers.ingest import Ingestor, partition_order
from vigil.settings import BusSettings


@dataclass
class FakeBus:
    """Records every publish attempt; fails those whose subject starts with a key of `failing`."""

    settings: BusSettings
    failing: dict[str, Exception] = field(default_factory=dict)
    attempts: list[tuple[list[str], list[str], float | None]] = field(default_factory=list)
    """(subjects, message ids, ack timeout) of each publish or publish_many."""

    def _attempt(self, subjects: list[str], ids: list[str], ack_timeout_s: float | None) -> None:
        self.attempts.append((subjects, ids, ack_timeout_s))
        for prefix, exc in self.failing.items():
            if subjects[0].startswith(prefix):
                raise exc

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str,
        headers: Headers | None = None,
        ack_timeout_s: float | None = None,
    ) -> None:
        self._attempt([subject], [msg_id], ack_timeout_s)

    async def publish_many(
        self, messages: list[tuple[str, bytes, str, Any]], *, ack_timeout_s: float
    ) -> None:
        self._attempt([m[0] for m in messages], [m[2] for m in messages], ack_timeout_s)

    @property
    def subjects(self) -> list[str]:
        return [subjects[0] for subjects, _, _ in self.attempts]


def ingestor(bus: FakeBus) -> Ingestor:
    return Ingestor(cast(Bus, bus), max_request_bytes=16 << 20, max_inflight_bytes=64 << 20)


async def send(ingest: Ingestor, *bodies: str, signal: Any = LOGS) -> None:
    await ingest.export(signal, "p1", export_bytes("svc", list(bodies)), content_type=PROTOBUF)


def partition_of(subject: str) -> int:
    token = subject.split(".")[1].removeprefix("records")
    return int(token or 0)


def test_partition_order_is_a_ring_with_failed_partitions_last() -> None:
    assert partition_order(0, [0.0, 0.0, 0.0], now=10.0) == [0, 1, 2]
    assert partition_order(2, [0.0, 0.0, 0.0], now=10.0) == [2, 0, 1]
    assert partition_order(1, [0.0, 15.0, 0.0], now=10.0) == [2, 0, 1]
    assert partition_order(0, [0.0, 15.0, 0.0], now=10.0) == [0, 2, 1]
    assert partition_order(0, [11.0, 15.0, 0.0], now=10.0) == [2, 0, 1]
    # a partition's bad spell ends
    assert partition_order(1, [0.0, 9.0, 0.0], now=10.0) == [1, 2, 0]
    assert partition_order(0, [0.0], now=10.0) == [0]


async def test_one_partition_publishes_as_before() -> None:
    bus = FakeBus(BusSettings())
    await send(ingestor(bus), "a", "b")
    [(subjects, ids, ack_timeout)] = bus.attempts
    assert subjects == ["vigil.records.p1"] and len(ids) == 1
    assert ack_timeout is None  # the bus's own 10 s: there is nowhere else to go


async def test_exports_spread_over_partitions_and_a_retry_lands_on_the_same_one() -> None:
    bus = FakeBus(BusSettings(records_partitions=3))
    ingest = ingestor(bus)
    bodies = [f"record {i}" for i in range(60)]
    for body in bodies:
        await send(ingest, body)
    assert {partition_of(s) for s in bus.subjects} == {0, 1, 2}
    assert all(timeout == 1.0 for _, _, timeout in bus.attempts)
    # an exporter's retry: the same bytes, the same id, the same partition
    again = FakeBus(BusSettings(records_partitions=3))
    payload = export_bytes("svc", ["same"])
    for _ in range(2):
        await ingestor(again).export(LOGS, "p1", payload, content_type=PROTOBUF)
    assert again.attempts[0][:2] == again.attempts[1][:2]


async def test_a_failing_partition_hands_the_export_to_the_next_and_is_tried_last_a_while() -> None:
    bus = FakeBus(BusSettings(records_partitions=3, publish_failover_s=0.5))
    ingest = ingestor(bus)
    payload = b""
    for i in range(100):  # an export that picks partition 1
        payload = export_bytes("svc", [f"record {i}"])
        bus.attempts.clear()
        await ingest.export(LOGS, "p1", payload, content_type=PROTOBUF)
        if partition_of(bus.subjects[0]) == 1:
            break
    bus.failing = {"vigil.records1.": TransientError("the bus did not confirm the write in time")}
    bus.attempts.clear()
    await ingest.export(LOGS, "p1", payload, content_type=PROTOBUF)  # partition 1 again, first
    assert [partition_of(s) for s in bus.subjects] == [1, 2]
    [first_ids, second_ids] = [ids for _, ids, _ in bus.attempts]
    assert first_ids == second_ids  # the same message, on the next partition
    assert all(timeout == 0.5 for _, _, timeout in bus.attempts)
    # right after, partition 1 is tried last: no export waits for it first
    bus.attempts.clear()
    await ingest.export(LOGS, "p1", payload, content_type=PROTOBUF)
    assert [partition_of(s) for s in bus.subjects] == [2]


async def test_every_partition_failing_is_unavailable() -> None:
    bus = FakeBus(BusSettings(records_partitions=3))
    bus.failing = {"vigil.records": TransientError("the bus did not confirm the write in time")}
    with pytest.raises(TransientError) as raised:
        await send(ingestor(bus), "x")
    assert type(raised.value) is TransientError
    assert sorted(partition_of(s) for s in bus.subjects) == [0, 1, 2]
    # the last partition gets the bus's usual wait: a slow bus is not refused sooner than before
    assert [timeout for _, _, timeout in bus.attempts] == [1.0, 1.0, None]


async def test_a_full_partition_is_backpressure_not_a_failover() -> None:
    bus = FakeBus(BusSettings(records_partitions=3))
    bus.failing = {"vigil.records": Backpressure("the bus is over its limit", retry_after=2.0)}
    with pytest.raises(Backpressure):
        await send(ingestor(bus), "x")
    assert len(bus.attempts) == 1


async def test_the_chunks_of_one_export_stay_together_on_each_attempt() -> None:
    bus = FakeBus(BusSettings(records_partitions=3, max_message_bytes=64 * 1024))
    big = [f"{i:04d} " + "x" * 1000 for i in range(300)]
    payload = export_bytes("svc", big)
    await ingestor(bus).export(LOGS, "p1", payload, content_type=PROTOBUF)
    [(subjects, ids, _)] = bus.attempts
    assert len(subjects) > 1 and len(set(subjects)) == 1 and len(set(ids)) == len(ids)
    # its partition fails: the whole export goes to the next one
    bus.failing = {subjects[0]: TransientError("the bus did not confirm the write in time")}
    bus.attempts.clear()
    await ingestor(bus).export(LOGS, "p1", payload, content_type=PROTOBUF)
    assert [len(set(s)) for s, _, _ in bus.attempts] == [1, 1]
    assert [partition_of(s[0]) for s, _, _ in bus.attempts] == [
        partition_of(subjects[0]),
        (partition_of(subjects[0]) + 1) % 3,
    ]
    assert bus.attempts[0][1] == bus.attempts[1][1] == ids
    # the wait for the acknowledgements grows with the chunks
    assert bus.attempts[0][2] == min(1.0 * len(ids), 10.0)


async def test_traces_keep_their_one_stream() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "GET /"
    bus = FakeBus(BusSettings(records_partitions=3))
    await ingestor(bus).export(TRACES, "p1", request.SerializeToString(), content_type=PROTOBUF)
    assert bus.subjects == ["vigil.spans.p1"]
