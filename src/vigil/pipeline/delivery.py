"""A durable consumer whose messages are handed to an agent or a sink, with retries paced by
negative acks (exponential backoff with jitter) and a dead-letter store at the end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

from nats.aio.msg import Msg
from prometheus_client import Counter, Histogram

from vigil.bus.acks import AckGroups
from vigil.bus.client import Bus
from vigil.bus.pull import PullStream
from vigil.bus.topology import ConsumerSpec
from vigil.errors import DeliveryError
from vigil.specs import RetrySpec
from vigil.store.models import DeadLetter
from vigil.store.repo import Store, new_id, utcnow
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DELIVERIES = Counter("vigil_deliveries_total", "Delivery attempts.", ["kind", "outcome"])
DELIVERY_SECONDS = Histogram("vigil_delivery_seconds", "Time of one delivery attempt.", ["kind"])
DEAD_LETTERS = Counter("vigil_dead_letters_total", "Work moved to the dead-letter store.", ["kind"])


class Handler(Protocol):
    kind: str
    target: str
    project_id: str

    async def prepare(self, data: bytes, attempt: int) -> int:
        """Get ready for an attempt; return its number (the bus's count, or more where the
        handler recorded more attempts than the bus remembers after a crash)."""

    async def deliver(self, data: bytes, attempt: int) -> None:
        """Hand the work over; raise DeliveryError when it was not taken."""

    async def succeeded(self, data: bytes, attempt: int) -> None: ...

    async def failed(self, data: bytes, attempt: int, error: DeliveryError, final: bool) -> str:
        """Record a failed attempt; return the reference the dead letter is filed under."""


def backoff_delay(retry: RetrySpec, attempt: int) -> float:
    """Equal jitter: half the exponential step fixed, half random, so retries spread out."""
    step = min(retry.max_backoff_s, retry.initial_backoff_s * 2.0 ** max(attempt - 1, 0))
    return step / 2 + random.uniform(0, step / 2)


class DeliveryWorker:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        consumer: ConsumerSpec,
        handler: Handler,
        *,
        retry: RetrySpec,
        concurrency: int,
        ack_delay_s: float = 0.05,
    ) -> None:
        """`ack_delay_s`: the longest an acknowledgement waits for others to go with it."""
        self._bus = bus
        self._store = store
        self._consumer = consumer
        self._handler = handler
        self._retry = retry
        self._concurrency = concurrency
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        # A message is prepared (the batch ledger's row: a database write) before it takes one of
        # the `concurrency` attempt slots, and up to `concurrency` more are taken and prepared
        # while the slots are busy: the database's latency then overlaps the attempts instead of
        # holding a slot while the target waits for work.
        self._in_hand = 2 * concurrency
        self._taken = asyncio.Semaphore(self._in_hand)
        self._slots = asyncio.Semaphore(concurrency)
        # groups of at most 2 x concurrency: with the messages in hand, within the consumer's
        # window of unacknowledged messages (at least 4 x concurrency, see `agent_consumer`;
        # sinks' consumers allow 64 for 4 attempts at a time); where workers of several
        # processes share the window, `_loop` sends them early
        self._acks = AckGroups(delay_s=ack_delay_s, most=2 * concurrency)
        self._long_wait_s = (consumer.config.ack_wait or 30.0) / 4
        self._starved = False
        """Whether the loop waits for messages while the consumer has more (see `_loop`)."""
        # looked up once: a label lookup hashes and locks on every call
        kind = handler.kind
        self._seconds = DELIVERY_SECONDS.labels(kind)
        self._ok, self._retry_count, self._dead = (
            DELIVERIES.labels(kind, o) for o in ("ok", "retry", "dead")
        )

    async def start(self) -> None:
        stream = await self._bus.pull_stream(self._consumer)
        self._task = asyncio.create_task(
            self._loop(stream), name=f"{self._handler.kind}-{self._consumer.name}"
        )

    async def shutdown(self, grace_s: float = 20.0) -> None:
        """Stop taking work, then let attempts in progress finish; what does not finish within
        the grace period is redelivered by the bus after its ack wait."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._handling:
            await asyncio.wait(self._handling, timeout=grace_s)
        await self._acks.close()

    async def _loop(self, stream: PullStream) -> None:
        """Each free place in hand takes the next message; the pull stream asks the bus for as
        many messages as there are free places, so none waits here for one. A slow target keeps
        the places taken (its attempts hold the slots, the next ones wait prepared), and the
        pulls stop."""
        backlog = False
        try:
            while True:
                await self._taken.acquire()
                # The consumer has more than it sends: its window of unacknowledged messages may
                # be full (shared with other processes' workers), and acknowledgements waiting in
                # a group would hold it while this worker has room: they go at once meanwhile.
                self._starved = backlog and not stream.ready
                if self._starved:
                    self._acks.flush()
                try:
                    msg = await stream.next(self._in_hand - len(self._handling))
                except asyncio.CancelledError:
                    self._taken.release()
                    raise
                except Exception:
                    self._taken.release()
                    log.exception("pull failed", extra={"consumer": self._consumer.name})
                    await asyncio.sleep(1.0)
                    continue
                self._starved = False
                backlog = _backlog_after(msg)
                handling = asyncio.create_task(self._handle(msg))
                self._handling.add(handling)
                handling.add_done_callback(self._done)
        finally:
            await stream.stop()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._handling.discard(task)
        self._taken.release()

    async def _handle(self, msg: Msg) -> None:
        attempt = msg.metadata.num_delivered
        taken = started = time.perf_counter()
        try:
            attempt = await self._handler.prepare(msg.data, attempt)
            async with self._slots:
                started = time.perf_counter()
                if started - taken > self._long_wait_s:
                    # waited for a slot behind slow attempts: its own attempt gets a full ack
                    # wait, so the bus does not hand it to another worker meanwhile
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
                await self._handler.deliver(msg.data, attempt)
        except DeliveryError as error:
            self._seconds.observe(time.perf_counter() - started)
            await self._failed(msg, attempt, error)
            return
        except Exception as exc:
            self._seconds.observe(time.perf_counter() - started)
            # Our own failure (a malformed message, a database error): retried like a transient
            # one, and dead-lettered like any other work when the attempts run out.
            log.exception(
                "delivery crashed", extra={"kind": self._handler.kind, "target": self._handler.target}
            )
            await self._failed(msg, attempt, DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True))
            return
        self._seconds.observe(time.perf_counter() - started)
        await self._handler.succeeded(msg.data, attempt)
        self._ok.inc()
        self._ack(msg)

    def _ack(self, msg: Msg) -> None:
        self._acks.ack(msg)
        if self._starved:
            self._acks.flush()

    async def _failed(self, msg: Msg, attempt: int, error: DeliveryError) -> None:
        kind = self._handler.kind
        final = not error.retryable or attempt >= self._retry.max_attempts
        try:
            ref = await self._handler.failed(msg.data, attempt, error, final)
        except Exception:
            ref = f"seq-{msg.metadata.sequence.stream}"
        if final:
            await self._dead_letter(msg, ref, attempt, error)
            self._dead.inc()
            self._ack(msg)
        else:
            self._retry_count.inc()
            await msg.nak(delay=backoff_delay(self._retry, attempt))
        log.warning(
            "delivery failed",
            extra={
                "kind": kind,
                "target": self._handler.target,
                "attempt": attempt,
                "final": final,
                "error": str(error),
            },
        )

    async def _dead_letter(self, msg: Msg, ref: str, attempt: int, error: DeliveryError) -> None:
        DEAD_LETTERS.labels(self._handler.kind).inc()
        await self._store.add_dead_letter(
            DeadLetter(
                id=new_id(),
                project_id=self._handler.project_id,
                kind=self._handler.kind,
                target=self._handler.target,
                ref=ref,
                subject=msg.subject,
                message=msg.data.decode(),
                error=str(error),
                attempts=attempt,
                created_at=utcnow(),
                replayed_at=None,
            )
        )


def _backlog_after(msg: Msg) -> bool:
    """Whether the consumer had more messages for its workers when it sent `msg`."""
    try:
        return msg.metadata.num_pending > 0
    except Exception:  # not a JetStream message
        return False


K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class WorkerSet(Generic[K, T]):
    """One delivery worker per configured item (a pipeline, a sink), following configuration
    changes: a changed item's worker restarts, a removed item's worker stops and its consumer goes."""

    def __init__(
        self,
        build: Callable[[T], DeliveryWorker],
        removed: Callable[[K], Awaitable[None]],
    ) -> None:
        self._build = build
        self._removed = removed
        self._workers: dict[K, tuple[T, DeliveryWorker]] = {}
        self._lock = asyncio.Lock()

    async def reconcile(self, wanted: dict[K, T]) -> None:
        async with self._lock:
            for key, (running, worker) in list(self._workers.items()):
                if wanted.get(key) != running:
                    await worker.shutdown()
                    del self._workers[key]
                    if key not in wanted:
                        await self._removed(key)
            for key, item in wanted.items():
                if key not in self._workers:
                    worker = self._build(item)
                    await worker.start()
                    self._workers[key] = (item, worker)

    async def shutdown(self) -> None:
        async with self._lock:
            workers, self._workers = self._workers, {}
            for _, worker in workers.values():
                await worker.shutdown()
