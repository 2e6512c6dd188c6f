"""Reads records messages, filters each record for every pipeline of its project, batches the
matching ones and publishes the batches; acknowledges a message once its records are safe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import orjson
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from prometheus_client import Counter, Histogram

from vigil.bus.client import Bus
from vigil.bus.topology import batches_subject
from vigil.pipeline.batcher import Batch, Batcher, Ticket
from vigil.pipeline.config import ActivePipeline, ConfigCache, agent_consumer
from vigil.pipeline.filters import ResourceContext
from vigil.receivers.ingest import RECEIVED_HEADER
from vigil.records import attributes, effective_severity, flatten
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RECORDS_ROUTED = Counter("vigil_records_routed_total", "Records read by the pipeline router.")
RECORDS_MATCHED = Counter("vigil_records_matched_total", "Records that matched a pipeline.", ["pipeline"])
BATCH_SIZE = Histogram(
    "vigil_batch_records", "Records per batch.", buckets=(1, 2, 5, 10, 20, 50, 100, 500, 1000)
)


class Router:
    def __init__(self, bus: Bus, config: ConfigCache, *, fetch_batch: int = 64) -> None:
        self._bus = bus
        self._config = config
        self._fetch_batch = fetch_batch
        self._batchers: dict[tuple[str, str], Batcher] = {}
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        self._config.subscribe(self._on_config)
        subscription = await self._bus.pull(self._bus.topology.router_consumer())
        self._task = asyncio.create_task(self._run(subscription), name="router")

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for batcher in self._batchers.values():
            batcher.flush()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=10)

    async def _on_config(self) -> None:
        wanted = {(p.project_id, p.name): p for p in self._config.all_pipelines()}
        for key in list(self._batchers):
            active = wanted.get(key)
            batcher = self._batchers[key]
            if active is None or (
                active.spec.batch.max_records,
                active.spec.batch.max_wait_ms / 1000,
            ) != (batcher.max_records, batcher.max_wait_s):
                batcher.flush()
                del self._batchers[key]

    async def _run(self, subscription: object) -> None:
        fetch = subscription.fetch  # type: ignore[attr-defined]
        while True:
            try:
                messages: list[Msg] = await fetch(self._fetch_batch, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("router fetch failed")
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                try:
                    await self._route(msg)
                except Exception:
                    log.exception(
                        "router failed on a message; it will be redelivered", extra={"subject": msg.subject}
                    )
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=1.0)

    async def _route(self, msg: Msg) -> None:
        project_id = msg.subject.split(".", 2)[2]
        pipelines = self._config.pipelines.get(project_id)
        if not pipelines:
            await msg.ack()
            return
        request = ExportLogsServiceRequest()
        try:
            request.ParseFromString(msg.data)
        except Exception:
            log.error("undecodable records message dropped", extra={"subject": msg.subject})
            await msg.term()
            return
        received = int((msg.headers or {}).get(RECEIVED_HEADER, "0") or 0)
        ticket = Ticket(msg, msg.metadata.sequence.stream)
        index = 0
        for rl in request.resource_logs:
            resource_attributes = attributes(rl.resource.attributes)
            context = ResourceContext(resource_attributes, str(resource_attributes.get("service.name", "")))
            candidates = [p for p in pipelines if p.filter.accepts_resource(context)]
            for sl in rl.scope_logs:
                if not candidates:
                    index += len(sl.log_records)
                    continue
                for record in sl.log_records:
                    severity = effective_severity(record)
                    flat = None
                    for pipeline in candidates:
                        if pipeline.filter.accepts_record(record, severity):
                            if flat is None:
                                flat = flatten(record, resource_attributes, received)
                            self._batcher(pipeline).add(flat, ticket, index)
                    index += 1
        RECORDS_ROUTED.inc(index)
        if ticket.pending == 0:
            await msg.ack()

    def _batcher(self, pipeline: ActivePipeline) -> Batcher:
        key = (pipeline.project_id, pipeline.name)
        batcher = self._batchers.get(key)
        if batcher is None:
            batch = pipeline.spec.batch
            batcher = Batcher(
                pipeline.project_id, pipeline.name, batch.max_records, batch.max_wait_ms, self._emit
            )
            self._batchers[key] = batcher
        return batcher

    def _emit(self, batch: Batch) -> None:
        RECORDS_MATCHED.labels(batch.pipeline).inc(len(batch.records))
        BATCH_SIZE.observe(len(batch.records))
        task = asyncio.create_task(self._publish(batch))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _publish(self, batch: Batch) -> None:
        pipeline = self._active(batch)
        payload = batch.payload()
        data = orjson.dumps(payload)
        delay = 0.2
        for attempt in range(12):
            try:
                if pipeline is not None:
                    await self._bus.ensure_consumer(agent_consumer(self._bus.topology, pipeline))
                await self._bus.publish(
                    batches_subject(batch.project_id, batch.pipeline), data, msg_id=payload["request_id"]
                )
                break
            except Exception as exc:
                log.warning(
                    "batch publish failed; retrying",
                    extra={"pipeline": batch.pipeline, "attempt": attempt + 1, "error": str(exc)},
                )
                await self._keep_alive(batch)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)
        else:
            await self._give_back(batch)
            return
        await self._settle(batch)

    def _active(self, batch: Batch) -> ActivePipeline | None:
        for pipeline in self._config.pipelines.get(batch.project_id, ()):
            if pipeline.name == batch.pipeline:
                return pipeline
        return None

    async def _settle(self, batch: Batch) -> None:
        for ticket, count in _tickets(batch).items():
            ticket.pending -= count
            if ticket.pending == 0 and not ticket.failed and ticket.msg is not None:
                await ticket.msg.ack()

    async def _keep_alive(self, batch: Batch) -> None:
        for ticket in _tickets(batch):
            if ticket.msg is not None:
                with contextlib.suppress(Exception):
                    await ticket.msg.in_progress()

    async def _give_back(self, batch: Batch) -> None:
        """The bus would not take the batch: let its messages come again rather than lose them."""
        log.error(
            "batch could not be published; its messages will be redelivered",
            extra={"pipeline": batch.pipeline},
        )
        for ticket in _tickets(batch):
            if not ticket.failed and ticket.msg is not None:
                ticket.failed = True
                with contextlib.suppress(Exception):
                    await ticket.msg.nak(delay=2.0)


def _tickets(batch: Batch) -> dict[Ticket, int]:
    """The messages a batch drew from, with how many of its records each gave."""
    counts: dict[Ticket, int] = {}
    for ticket, _ in batch.origins:
        counts[ticket] = counts.get(ticket, 0) + 1
    return counts
