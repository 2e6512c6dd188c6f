"""Outputs from the bus to every sink of their project.

The sink router stores each output (the API lists them) and fans it out as one delivery message
per sink, so each sink retries on its own: a Slack outage never re-sends to a webhook that
already took the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
import orjson
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from vigil.bus.client import Bus, next_fetch
from vigil.bus.topology import DELIVERIES_STREAM, deliveries_subject, sink_consumer_name
from vigil.errors import DeliveryError
from vigil.outbound_policy import OutboundPolicy, outbound_client
from vigil.outputs import OutputEnvelope
from vigil.pipeline.config import ActiveSink, ConfigCache, sink_consumer
from vigil.pipeline.delivery import DeliveryWorker, WorkerSet
from vigil.pipeline.redact import RedactionSpec, Redactor
from vigil.sinks import build_sink
from vigil.sinks.base import Sink
from vigil.store.models import Output
from vigil.store.repo import Store
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class SinkRouter:
    def __init__(self, bus: Bus, store: Store, config: ConfigCache) -> None:
        self._bus = bus
        self._store = store
        self._config = config
        self._default_redactor = Redactor(RedactionSpec())
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        subscription = await self._bus.pull(self._bus.topology.sink_router_consumer())
        self._task = asyncio.create_task(self._run(subscription), name="sink-router")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self, subscription: object) -> None:
        fetch = subscription.fetch  # type: ignore[attr-defined]
        messages: list[Msg] = []
        while True:
            try:
                size, wait_s = next_fetch(messages, 32)
                messages = await fetch(size, timeout=wait_s)
            except (TimeoutError, NatsTimeout):
                messages = []
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sink router fetch failed")
                messages = []
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                try:
                    await asyncio.shield(self._route(msg))
                except Exception:
                    log.exception("sink routing failed; the output will be redelivered")
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=2.0)

    def _redacted(self, envelope: OutputEnvelope) -> OutputEnvelope:
        """Outputs are redacted with their pipeline's rules before they are stored or sent on."""
        pipeline = next(
            (p for p in self._config.pipelines.get(envelope.project_id, ()) if p.name == envelope.pipeline),
            None,
        )
        redactor = pipeline.redactor if pipeline is not None else self._default_redactor
        if redactor is None:
            return envelope
        return envelope.model_copy(update={"payload": redactor.redact_payload(envelope.payload)})

    async def _route(self, msg: Msg) -> None:
        envelope = self._redacted(OutputEnvelope.model_validate_json(msg.data))
        idempotency_key = (msg.headers or {}).get("Vigil-Idempotency-Key")
        _, created = await self._store.add_output(
            Output(
                id=envelope.id,
                project_id=envelope.project_id,
                request_id=envelope.request_id,
                pipeline=envelope.pipeline,
                idempotency_key=idempotency_key,
                payload=envelope.payload,
                received_at=envelope.received_at,
            )
        )
        # A redelivered output fans out again: the deliveries' message ids make that a no-op on
        # the bus inside its duplicate window.
        data = envelope.model_dump_json().encode()
        messages = []
        for sink in self._config.sinks.get(envelope.project_id, ()):
            await self._bus.ensure_consumer(sink_consumer(self._bus.topology, sink))
            messages.append(
                (deliveries_subject(sink.project_id, sink.id), data, f"{envelope.id}:{sink.id}", None)
            )
        if messages:
            await self._bus.publish_many(messages)
        await msg.ack()
        log.debug("output routed", extra={"output": envelope.id, "sinks": len(messages), "new": created})


class SinkDeliveryHandler:
    kind = "sink"

    def __init__(self, sink: ActiveSink, target: Sink) -> None:
        self.project_id = sink.project_id
        self.target = sink.id
        self._sink = target

    async def prepare(self, data: bytes, attempt: int) -> int:
        return attempt

    async def deliver(self, data: bytes, attempt: int) -> None:
        await self._sink.deliver(OutputEnvelope.model_validate_json(data))

    async def succeeded(self, data: bytes, attempt: int) -> None:
        return None

    async def failed(self, data: bytes, attempt: int, error: DeliveryError, final: bool) -> str:
        output_id: str = orjson.loads(data)["id"]
        return output_id


class SinkWorkers:
    """Keeps a worker running for every sink, following configuration changes."""

    def __init__(
        self, bus: Bus, store: Store, config: ConfigCache, outbound: OutboundPolicy | None = None
    ) -> None:
        self._bus = bus
        self._store = store
        self._config = config
        self._client = outbound_client(outbound or OutboundPolicy(), httpx.Limits(max_connections=256))
        self._workers: WorkerSet[str, ActiveSink] = WorkerSet(self._worker, self._removed)

    async def start(self) -> None:
        self._config.subscribe(self.reconcile)
        await self.reconcile()

    async def shutdown(self) -> None:
        await self._workers.shutdown()
        await self._client.aclose()

    async def reconcile(self) -> None:
        await self._workers.reconcile({s.id: s for s in self._config.all_sinks()})

    def _worker(self, sink: ActiveSink) -> DeliveryWorker:
        handler = SinkDeliveryHandler(sink, build_sink(sink.spec, self._client))
        consumer = sink_consumer(self._bus.topology, sink)
        return DeliveryWorker(self._bus, self._store, consumer, handler, retry=sink.spec.retry, concurrency=4)

    async def _removed(self, sink_id: str) -> None:
        await self._bus.delete_consumer(DELIVERIES_STREAM, sink_consumer_name(sink_id))
