"""A pull stream on a real nats-server: messages flow as they arrive, one request serves many of
them, a request never asks for more than the free slots, and an expired request is replaced."""

from __future__ import annotations

import asyncio
import json

from vigil.bus.client import Bus
from vigil.bus.pull import PullStream
from vigil.bus.topology import BATCHES_STREAM


async def observed_requests(bus: Bus, consumer: str) -> list[dict[str, int]]:
    """Every pull request sent for `consumer`, as the server receives it."""
    seen: list[dict[str, int]] = []

    async def note(msg: object) -> None:
        seen.append(json.loads(msg.data))  # type: ignore[attr-defined]

    await bus.nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{BATCHES_STREAM}.{consumer}", cb=note)
    return seen


async def publish(bus: Bus, subject: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        await bus.publish(subject, f"m{i}".encode(), msg_id=f"{subject}-{i}")


async def test_messages_flow_with_few_requests(bus: Bus) -> None:
    spec = bus.topology.agent_consumer("p1", "all", ack_wait_s=30, max_pending=64, max_attempts=5)
    requests = await observed_requests(bus, spec.name)
    stream = await bus.pull_stream(spec)
    subject = "vigil.batches.p1.all"
    got: list[bytes] = []
    for i in range(20):  # one at a time, as at a steady rate: each message is handled at once
        await publish(bus, subject, 1, start=i)
        msg = await asyncio.wait_for(stream.next(free=8), 5)
        got.append(msg.data)
        await msg.ack()
    await stream.stop()
    assert got == [f"m{i}".encode() for i in range(20)]
    assert all(r["batch"] <= 8 for r in requests)
    assert len(requests) <= 4  # a request serves up to 8 messages; `fetch` sent two per message


async def test_a_request_asks_for_the_free_slots_only(bus: Bus) -> None:
    spec = bus.topology.agent_consumer("p2", "all", ack_wait_s=30, max_pending=64, max_attempts=5)
    requests = await observed_requests(bus, spec.name)
    stream = await bus.pull_stream(spec)
    await publish(bus, "vigil.batches.p2.all", 6)
    first = await asyncio.wait_for(stream.next(free=2), 5)
    second = await asyncio.wait_for(stream.next(free=1), 5)
    third = await asyncio.wait_for(stream.next(free=1), 5)
    await stream.stop()
    assert [m.data for m in (first, second, third)] == [b"m0", b"m1", b"m2"]
    assert [r["batch"] for r in requests] == [2, 1]


async def test_an_expired_request_is_replaced(bus: Bus) -> None:
    spec = bus.topology.agent_consumer("p3", "all", ack_wait_s=30, max_pending=64, max_attempts=5)
    await bus.ensure_consumer(spec)
    stream = PullStream(bus.nc, spec.stream, spec.name, expires_s=0.3)
    await stream.start()
    waiting = asyncio.create_task(stream.next(free=4))
    await asyncio.sleep(1.0)  # the first request expired meanwhile, unanswered
    assert not waiting.done()
    await publish(bus, "vigil.batches.p3.all", 1)
    msg = await asyncio.wait_for(waiting, 5)
    await stream.stop()
    assert msg.data == b"m0"


async def test_a_request_the_server_never_ends_is_replaced_after_its_expiry(bus: Bus) -> None:
    requests: list[float] = []

    async def swallow(msg: object) -> None:  # hears the request, never answers it
        requests.append(asyncio.get_running_loop().time())

    await bus.nc.subscribe("test.lost.requests", cb=swallow)
    stream = PullStream(bus.nc, "UNUSED", "unused", expires_s=0.1)
    stream._subject = "test.lost.requests"  # as if the server lost every request
    await stream.start()
    waiting = asyncio.create_task(stream.next(free=2))
    await asyncio.sleep(2.5)
    waiting.cancel()
    await stream.stop()
    # given up a second after each expiry, then asked again
    assert 2 <= len(requests) <= 3
    assert 1.0 < requests[1] - requests[0] < 1.5
