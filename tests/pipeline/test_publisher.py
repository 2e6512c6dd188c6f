"""The router's batch publisher on a real nats-server: a batch is settled by the bus's
acknowledgement, and a batch whose acknowledgement never comes is published again, not lost."""

from __future__ import annotations

import asyncio

from nats.aio.msg import Msg

from vigil.bus.client import Bus
from vigil.bus.topology import BATCHES_STREAM, ConsumerSpec
from vigil.pipeline.batcher import Batch, Ticket
from vigil.pipeline.publisher import BatchPublisher


def batch_from(ticket: Ticket, records: int) -> Batch:
    ticket.pending += records
    return Batch(
        project_id="p1",
        pipeline="all",
        records=[{"body": f"r{i}"} for i in range(records)],
        origins=[(ticket, i) for i in range(records)],
    )


def agents(bus: Bus) -> ConsumerSpec:
    return bus.topology.agent_consumer("p1", "all", ack_wait_s=30, max_pending=64, max_attempts=5)


async def stored(bus: Bus) -> list[Msg]:
    """The batches the agents' consumer has (made before the batches were published)."""
    sub = await bus.pull(agents(bus))
    try:
        return await sub.fetch(100, timeout=1)
    finally:
        await sub.unsubscribe()


async def settled(publisher: BatchPublisher, *tickets: Ticket, within_s: float) -> None:
    for _ in range(int(within_s / 0.02)):
        if not any(t.pending for t in tickets) and not publisher._unpublished:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("batches not settled in time")


async def test_batches_of_one_step_are_published_and_their_records_settled(bus: Bus) -> None:
    await bus.ensure_consumer(agents(bus))
    publisher = BatchPublisher(bus, {}, max_inflight=100)
    tickets = [Ticket(msg=None, sequence=n) for n in range(1, 21)]
    for ticket in tickets:
        publisher.emit(batch_from(ticket, 3))
    await settled(publisher, *tickets, within_s=5)
    await publisher.close()
    assert len(await stored(bus)) == 20


async def test_a_batch_whose_acknowledgement_never_comes_is_published_again(bus: Bus) -> None:
    # The batches' stream is gone and a silent subscriber takes its subject: the bus takes the
    # batch and never acknowledges it.
    await bus.js.delete_stream(BATCHES_STREAM)
    silent = await bus.nc.subscribe("vigil.batches.p1.all", cb=ignore)
    publisher = BatchPublisher(bus, {}, max_inflight=100, ack_timeout_s=0.3)
    ticket = Ticket(msg=None, sequence=1)
    batch = batch_from(ticket, 2)
    request_id = batch.request_id()
    publisher.emit(batch)
    await asyncio.sleep(0.8)  # timed out at least once
    assert ticket.pending == 2 and publisher._unpublished == 1
    await silent.unsubscribe()
    await bus.ensure_streams()
    bus._known_consumers.clear()  # the stream went with its consumers
    await bus.ensure_consumer(agents(bus))
    await settled(publisher, ticket, within_s=10)
    await publisher.close()
    messages = await stored(bus)
    assert len(messages) == 1
    assert messages[0].headers is not None and messages[0].headers["Nats-Msg-Id"] == request_id
    assert not ticket.failed


async def test_batches_the_bus_still_refuses_at_close_are_given_up_unacknowledged(bus: Bus) -> None:
    await bus.js.delete_stream(BATCHES_STREAM)  # every publication refused at once
    publisher = BatchPublisher(bus, {}, max_inflight=100)
    ticket = Ticket(msg=None, sequence=1)
    publisher.emit(batch_from(ticket, 2))
    await asyncio.sleep(0.3)
    assert publisher._unpublished == 1  # retried meanwhile
    await asyncio.wait_for(publisher.close(grace_s=0.2), 2)
    await asyncio.sleep(0)
    # no retry goes on against a closing bus; the records message was never acknowledged
    assert publisher._unpublished == 0 and not publisher._retrying
    assert ticket.pending == 2


async def ignore(msg: object) -> None:
    """A subscriber that takes messages and never answers."""
