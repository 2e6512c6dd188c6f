"""Publications acknowledged on the bus's shared inbox, on a real nats-server: the bus's answer
settles each one, one the bus never answers fails after its timeout, and a message id is kept
once however often it is published."""

from __future__ import annotations

import asyncio
import time

import pytest

from vigil.bus.client import Bus
from vigil.bus.topology import BATCHES_STREAM
from vigil.errors import TransientError


async def test_many_publications_are_settled_by_their_acknowledgements(bus: Bus) -> None:
    futures = [
        await bus.publication("vigil.batches.p1.all", f"m{i}".encode(), msg_id=f"pub-{i}") for i in range(50)
    ]
    await asyncio.wait_for(asyncio.gather(*futures), 5)
    assert (await bus.js.stream_info(BATCHES_STREAM)).state.last_seq == 50


async def test_a_publication_nobody_acknowledges_fails_after_its_timeout(bus: Bus) -> None:
    heard: list[bytes] = []

    async def silent(msg: object) -> None:  # takes the message, never answers
        heard.append(msg.data)  # type: ignore[attr-defined]

    await bus.nc.subscribe("test.silent", cb=silent)
    started = time.monotonic()
    with pytest.raises(TransientError):
        await bus.publish("test.silent", b"lost", msg_id="silent-1", ack_timeout_s=0.3)
    assert 0.25 < time.monotonic() - started < 2.0
    assert heard == [b"lost"]
    # an acknowledgement that comes late finds nothing waiting, and nothing is left behind
    assert bus._publications is not None and bus._publications.waiting == 0


async def test_a_short_timeout_is_not_held_up_by_a_longer_one(bus: Bus) -> None:
    await bus.nc.subscribe("test.silent", cb=ignore)
    long = await bus.publication("test.silent", b"a", msg_id="long", ack_timeout_s=30)
    started = time.monotonic()
    with pytest.raises(TransientError):
        await bus.publish("test.silent", b"b", msg_id="short", ack_timeout_s=0.2)
    assert time.monotonic() - started < 2.0
    assert not long.done()
    long.cancel()


async def test_a_subject_without_a_stream_is_refused_at_once(bus: Bus) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError):
        await bus.publish("nobody.listens", b"x", msg_id="n-1", ack_timeout_s=5)
    assert time.monotonic() - started < 2.0


async def test_a_message_published_again_under_its_id_is_kept_once(bus: Bus) -> None:
    for _ in range(3):  # as after an acknowledgement that was lost
        await bus.publish("vigil.batches.p1.all", b"same", msg_id="batch-1")
    await bus.publish_many([("vigil.batches.p1.all", b"same", "batch-1", None)])
    assert (await bus.js.stream_info(BATCHES_STREAM)).state.last_seq == 1


async def ignore(msg: object) -> None:
    """A subscriber that takes messages and never answers."""
