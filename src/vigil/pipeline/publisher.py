"""The router's batches onto the bus: each is published (split when over its byte cap) and the
records messages it drew from are acknowledged once all their records are published; while the
bus refuses batches, or `max_inflight` wait to be published, routing is held back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from functools import partial
from typing import Any, Protocol

import orjson
from prometheus_client import Counter, Histogram

from vigil.bus.acks import AckGroups
from vigil.bus.client import Bus, to_vigil_error
from vigil.bus.topology import ConsumerSpec, batches_subject
from vigil.errors import MessageTooLarge
from vigil.pipeline.batcher import Batch, Ticket
from vigil.pipeline.config import ActivePipeline, agent_consumer
from vigil.pipeline.fit import ENVELOPE_BYTES, split_batch

log = logging.getLogger(__name__)

RECORDS_MATCHED = Counter("vigil_records_matched_total", "Items batched for a pipeline.", ["pipeline"])
RECORDS_REPRESENTED = Counter(
    "vigil_records_represented_total", "Received records the batched items stand for.", ["pipeline"]
)
BATCH_SIZE = Histogram(
    "vigil_batch_records", "Records per batch.", buckets=(1, 2, 5, 10, 20, 50, 100, 500, 1000)
)


class Lane(Protocol):
    """What the publisher reads of a pipeline's lane in the router."""

    pipeline: ActivePipeline
    consumer: ConsumerSpec | None
    """The agents' consumer of the pipeline's batches, made once per configuration."""


class BatchPublisher:
    """Batches emitted during one step of the router are published by one task, each with a
    callback on its acknowledgement, not a task waiting for it: a batch's publication costs its
    message and a future. A batch the bus refuses (or does not acknowledge in time) gets a task
    of its own that retries it."""

    def __init__(
        self,
        bus: Bus,
        lanes: Mapping[tuple[str, str], Lane],
        *,
        max_inflight: int,
        ack_timeout_s: float = 10.0,
    ) -> None:
        """`lanes`: the router's, by (project, pipeline), read when a batch is published;
        `ack_timeout_s`: how long a publication waits for the bus's acknowledgement before it is
        published again (under the same message id: the bus keeps one copy)."""
        self._bus = bus
        self._ack_timeout_s = ack_timeout_s
        self._lanes = lanes
        self._max_inflight = max_inflight
        self._counters: dict[str, tuple[Counter, Counter]] = {}
        # a message whose records are all published is acknowledged with others (see AckGroups);
        # small groups, so the consumer's window of unacknowledged messages stays open
        self._acks = AckGroups(most=min(8, max(1, bus.settings.router_max_pending // 4)))
        self._queued: deque[Batch] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._retrying: set[asyncio.Task[None]] = set()
        self._unpublished = 0
        """Batches emitted and not yet published (nor given back)."""
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._hold_until = 0.0
        self._last_warning = 0.0

    async def close(self, grace_s: float = 10.0) -> None:
        """Let the batches being published finish (up to `grace_s`), and send the acks that wait.
        Batches the bus still refuses then are given up: their records messages, never
        acknowledged, come again (to this process's successor), rather than being retried
        against a bus that is closing."""
        if self._unpublished > 0:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=grace_s)
        for task in list(self._retrying):
            task.cancel()
        await self._acks.close()

    async def wait_for_room(self) -> None:
        """Until the bus takes batches again and fewer than `max_inflight` are unpublished."""
        while True:
            hold = self._hold_until - time.monotonic()
            if hold > 0:
                await asyncio.sleep(hold)
            elif self._unpublished >= self._max_inflight:
                self._room.clear()
                await self._room.wait()
            else:
                return

    def emit(self, batch: Batch) -> None:
        counters = self._counters.get(batch.pipeline)
        if counters is None:  # a label lookup per batch hashes and locks: once per pipeline name
            counters = RECORDS_MATCHED.labels(batch.pipeline), RECORDS_REPRESENTED.labels(batch.pipeline)
            self._counters[batch.pipeline] = counters
        counters[0].inc(len(batch.records))
        counters[1].inc(batch.represented)
        BATCH_SIZE.observe(len(batch.records))
        self._unpublished += 1
        self._queued.append(batch)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_queued())

    def max_batch_bytes(self, pipeline: ActivePipeline) -> int:
        """The pipeline's byte cap, within what the bus takes in one message."""
        return min(pipeline.spec.batch.max_bytes, self._bus.settings.max_message_bytes - ENVELOPE_BYTES)

    async def _send_queued(self) -> None:
        try:
            while self._queued:
                batch = self._queued.popleft()
                try:
                    await self._send(batch)
                except Exception:  # not the bus's: the records messages come again
                    log.exception("batch not published", extra={"pipeline": batch.pipeline})
                    self._settled()
        finally:
            self._sender = None

    def _encoded(self, batch: Batch) -> tuple[Lane | None, str, bytes, int]:
        """The batch's lane, message id, message, and the byte cap the message must keep to."""
        lane = self._lanes.get((batch.project_id, batch.pipeline))
        payload = batch.payload()
        if lane is None:
            limit = self._bus.settings.max_message_bytes - ENVELOPE_BYTES
        else:
            limit = self.max_batch_bytes(lane.pipeline)
        return lane, str(payload["request_id"]), orjson.dumps(payload), limit

    async def _consumer_ready(self, lane: Lane | None) -> None:
        """The agents' consumer exists before the first batch for them is published."""
        if lane is not None:
            if lane.consumer is None:
                lane.consumer = agent_consumer(self._bus.topology, lane.pipeline)
            await self._bus.ensure_consumer(lane.consumer)

    async def _send(self, batch: Batch) -> None:
        """The batch's first attempt: its acknowledgement settles it (see `_sent`)."""
        lane, msg_id, data, limit = self._encoded(batch)
        if len(data) > limit:
            self._retry(self._publish_parts(batch, limit))
            return
        try:
            await self._consumer_ready(lane)
            future = await self._bus.publication(
                batches_subject(batch.project_id, batch.pipeline),
                data,
                msg_id=msg_id,
                ack_timeout_s=self._ack_timeout_s,
            )
        except Exception as exc:
            self._failed(batch, len(data), exc)
            return
        future.add_done_callback(partial(self._sent, batch, len(data)))

    def _sent(self, batch: Batch, size: int, future: asyncio.Future[None]) -> None:
        if future.cancelled():  # the bus was shut down: the records messages come again
            self._settled()
            return
        exc = future.exception()
        if exc is None:
            self._published(batch)
            self._settled()
        else:
            self._failed(batch, size, exc)

    def _failed(self, batch: Batch, size: int, exc: BaseException) -> None:
        error = to_vigil_error(exc) if isinstance(exc, Exception) else exc
        if isinstance(error, MessageTooLarge):
            # the bus takes less than it said (an external server's own limit): never retried
            # as it is, and never a reason to pause other pipelines
            self._retry(self._publish_parts(batch, max(size // 2, 4096)))
        elif isinstance(error, Exception):
            self._retry(self._publish(batch, error=error))
        else:
            self._settled()

    def _retry(self, attempts: Coroutine[Any, Any, None]) -> None:
        """The batch is published by a task of its own, and settled when it ends."""
        task = asyncio.create_task(attempts)
        self._retrying.add(task)
        task.add_done_callback(self._retried)

    def _retried(self, task: asyncio.Task[None]) -> None:
        self._retrying.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("batch not published", exc_info=task.exception())
        self._settled()

    def _settled(self) -> None:
        self._unpublished -= 1
        if self._unpublished < self._max_inflight:
            self._room.set()
        if self._unpublished == 0:
            self._idle.set()

    def _published(self, batch: Batch) -> None:
        for ticket, count in _tickets(batch).items():
            ticket.pending -= count
            if ticket.pending == 0 and not ticket.failed and ticket.msg is not None:
                self._acks.ack(ticket.msg)

    async def _publish(self, batch: Batch, *, error: Exception | None = None) -> None:
        """Publish the batch and wait for its acknowledgement, retrying while the bus refuses it;
        `error`: why an earlier attempt failed (the first retry then waits)."""
        lane, msg_id, data, limit = self._encoded(batch)
        if len(data) > limit:
            await self._publish_parts(batch, limit)
            return
        delay = 0.2
        for _ in range(12):
            if error is not None:
                self._hold(delay, batch, error)
                await _keep_alive(batch)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)
            try:
                await self._consumer_ready(lane)
                await self._bus.publish(
                    batches_subject(batch.project_id, batch.pipeline),
                    data,
                    msg_id=msg_id,
                    ack_timeout_s=self._ack_timeout_s,
                )
                break
            except MessageTooLarge:
                # the bus takes less than it said (an external server's own limit): never retried
                # as it is, and never a reason to pause other pipelines
                await self._publish_parts(batch, max(len(data) // 2, 4096))
                return
            except Exception as exc:
                error = exc
        else:
            await _give_back(batch)
            return
        self._published(batch)

    async def _publish_parts(self, batch: Batch, max_bytes: int) -> None:
        parts = split_batch(batch, max_bytes)
        log.warning(
            "batch over its byte cap: split, and records too large alone cut down",
            extra={"pipeline": batch.pipeline, "project": batch.project_id, "parts": len(parts)},
        )
        for part in parts:
            await self._publish(part)

    def _hold(self, delay: float, batch: Batch, exc: Exception) -> None:
        """The bus refused a batch: stop taking records for a while instead of piling them up."""
        now = time.monotonic()
        self._hold_until = max(self._hold_until, now + delay)
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning(
                "batches refused by the bus; routing paused",
                extra={"pipeline": batch.pipeline, "error": str(exc)},
            )


def _tickets(batch: Batch) -> dict[Ticket, int]:
    """The messages a batch drew from, with how many of its records each gave."""
    counts: dict[Ticket, int] = {}
    for ticket, _ in batch.origins:
        if ticket is not None:
            counts[ticket] = counts.get(ticket, 0) + 1
    return counts


async def _keep_alive(batch: Batch) -> None:
    for ticket in _tickets(batch):
        if ticket.msg is not None:
            await quietly(ticket.msg.in_progress())


async def _give_back(batch: Batch) -> None:
    """The bus would not take the batch: let its messages come again rather than lose them."""
    log.error(
        "batch could not be published; its messages will be redelivered", extra={"pipeline": batch.pipeline}
    )
    for ticket in _tickets(batch):
        if not ticket.failed and ticket.msg is not None:
            ticket.failed = True
            await quietly(ticket.msg.nak(delay=2.0))


async def quietly(action: object) -> None:
    try:
        await action  # type: ignore[misc]
    except Exception as exc:
        log.debug("bus acknowledgement failed", extra={"error": str(exc)})
