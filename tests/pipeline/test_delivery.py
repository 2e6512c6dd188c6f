"""A delivery worker on a real nats-server: messages are prepared while the attempt slots are busy,
a slow target still stops the pulls, and acknowledgements waiting in a group never hold a window
shared with other workers while the consumer has more to send (but still wait without a backlog)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vigil.bus.client import Bus
from vigil.bus.topology import BATCHES_STREAM, ConsumerSpec, batches_subject
from vigil.errors import DeliveryError
from vigil.pipeline.delivery import DeliveryWorker
from vigil.specs import RetrySpec
from vigil.store.repo import Store


class Target:
    """A handler whose attempts wait for `open` (set: they pass at once)."""

    kind = "test"
    target = "target"
    project_id = "p1"

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.prepared: list[bytes] = []
        self.attempting = 0
        self.most_attempting = 0
        self.delivered: list[bytes] = []

    async def prepare(self, data: bytes, attempt: int) -> int:
        self.prepared.append(data)
        return attempt

    async def deliver(self, data: bytes, attempt: int) -> None:
        self.attempting += 1
        self.most_attempting = max(self.most_attempting, self.attempting)
        try:
            await self.open.wait()
        finally:
            self.attempting -= 1

    async def succeeded(self, data: bytes, attempt: int) -> None:
        self.delivered.append(data)

    async def failed(self, data: bytes, attempt: int, error: DeliveryError, final: bool) -> str:
        return data.decode()


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 20.0) -> None:
    async def wait() -> None:
        while True:
            met = condition()
            if met if isinstance(met, bool) else await met:
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout_s)


async def publish(bus: Bus, spec: ConsumerSpec, count: int) -> None:
    await bus.ensure_consumer(spec)  # an interest stream keeps messages only for its consumers
    for i in range(count):
        await bus.publish(batches_subject("p1", "all"), f"m{i}".encode(), msg_id=f"m{i}")


def consumer(bus: Bus, max_pending: int) -> ConsumerSpec:
    return bus.topology.agent_consumer("p1", "all", ack_wait_s=30, max_pending=max_pending, max_attempts=3)


async def unacknowledged(bus: Bus, spec: ConsumerSpec) -> tuple[int, int]:
    """(messages handed out and not acknowledged, messages not handed out yet)."""
    info = await bus.js.consumer_info(BATCHES_STREAM, spec.name)
    return info.num_ack_pending, info.num_pending


async def all_acknowledged(bus: Bus, spec: ConsumerSpec) -> bool:
    return await unacknowledged(bus, spec) == (0, 0)


def worker(bus: Bus, store: Store, spec: ConsumerSpec, target: Target, **options: float) -> DeliveryWorker:
    return DeliveryWorker(bus, store, spec, target, retry=RetrySpec(), concurrency=2, **options)  # type: ignore[arg-type]


async def test_messages_wait_prepared_while_slow_attempts_hold_the_slots(bus: Bus, store: Store) -> None:
    spec = consumer(bus, max_pending=64)
    target = Target()
    target.open.clear()
    await publish(bus, spec, 8)
    delivery = worker(bus, store, spec, target)
    await delivery.start()
    try:
        # two attempts (the concurrency) and two more messages prepared behind them
        await until(lambda: len(target.prepared) == 4 and target.attempting == 2)
        await asyncio.sleep(0.5)  # time for pulls that should not happen
        assert len(target.prepared) == 4
        assert await unacknowledged(bus, spec) == (4, 4)
        target.open.set()
        await until(lambda: len(target.delivered) == 8)
        await until(lambda: len(target.prepared) == 8)
    finally:
        await delivery.shutdown()
    assert target.most_attempting == 2
    assert sorted(target.delivered) == sorted(f"m{i}".encode() for i in range(8))
    await until(lambda: all_acknowledged(bus, spec))


async def test_grouped_acknowledgements_do_not_hold_a_full_window_during_a_backlog(
    bus: Bus, store: Store
) -> None:
    # A window of 3 is less than a worker holds (4 messages, acks in groups of 4): as when
    # several processes share one. Acks that waited for their group (an hour here) would hold it.
    spec = consumer(bus, max_pending=3)
    target = Target()
    await publish(bus, spec, 10)
    delivery = worker(bus, store, spec, target, ack_delay_s=3600)
    await delivery.start()
    try:
        await until(lambda: len(target.delivered) == 10)
    finally:
        await delivery.shutdown()
    await until(lambda: all_acknowledged(bus, spec))


async def test_without_a_backlog_acknowledgements_wait_for_their_group(bus: Bus, store: Store) -> None:
    spec = consumer(bus, max_pending=64)
    target = Target()
    delivery = worker(bus, store, spec, target, ack_delay_s=3600)
    await delivery.start()
    try:
        await publish(bus, spec, 1)
        await until(lambda: len(target.delivered) == 1)
        await asyncio.sleep(0.3)
        assert await unacknowledged(bus, spec) == (1, 0)
    finally:
        await delivery.shutdown()
    await until(lambda: all_acknowledged(bus, spec))
