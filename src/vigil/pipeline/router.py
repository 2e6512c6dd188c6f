"""Reads records messages, filters each record for every pipeline of its project, gives it a
template, redacts and (where asked) deduplicates it, batches it and publishes the batches; a
message is acknowledged once its records are safe. Incident events from the detector take the
same way (without templates or deduplication) to the pipelines that take the `incident` kind.

Every records message is first handed to the recent records window (`investigate.window`), the
project's bytes kept for investigation whether or not a pipeline takes them.

Error records whose template is new are reported to `on_new_error_template` (the detector), whether
a pipeline took them or not, in projects that have a pipeline at all.

Memory stays bounded under overload: the router holds at most `router_max_pending` messages
per records partition (each partition's consumer window) and `max_inflight_batches` unpublished
batches, and pauses fetching while the bus refuses batches (`vigil.pipeline.publisher`, which
publishes the batches and acknowledges the messages), so a backlog stays on the bus and the edge
answers 429.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from prometheus_client import Counter

from vigil.bus.client import Bus, next_fetch
from vigil.bus.topology import ConsumerSpec
from vigil.detect.notices import IncidentNotice
from vigil.investigate.window import RecentRecords
from vigil.pipeline.batcher import Batcher, Ticket
from vigil.pipeline.config import ActivePipeline, ConfigCache
from vigil.pipeline.dedupe import Deduplicator
from vigil.pipeline.filters import ResourceContext
from vigil.pipeline.publisher import BatchPublisher, quietly
from vigil.pipeline.redact import RedactionSpec, Redactor
from vigil.pipeline.template_store import TemplateStore
from vigil.pipeline.templates import TemplateMatch, TemplateMiner
from vigil.pipeline.view import ViewExport, flatten_view, record_attributes
from vigil.receivers.admission import Pressure
from vigil.receivers.ingest import RECEIVED_HEADER, RECORDS_HEADER
from vigil.records import FlatRecord, body_text, effective_severity
from vigil.severity import severity_from_text
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_ERROR = 17
_YIELD_EVERY_RECORDS = 64
"""How often a message's records check whether the router's slice of the event loop is used up."""
_SLICE_S = 0.002
"""The receivers share the event loop: routing runs in slices of about this long."""
_YIELD_UNDER_PRESSURE_S = 0.01
"""The longest step back after a slice while the receivers answer late."""
NewErrorTemplate = Callable[[str, str, TemplateMatch, FlatRecord], Awaitable[None]]
"""(project, service, the match, the redacted record) of an error record that opened a template."""

RECORDS_ROUTED = Counter("vigil_records_routed_total", "Records read by the pipeline router.")


@dataclass
class _Lane:
    """A pipeline's stateful part in this router: its open batch and its deduplication groups."""

    pipeline: ActivePipeline
    batcher: Batcher
    dedupe: Deduplicator | None
    consumer: ConsumerSpec | None = None
    """The agents' consumer of the pipeline's batches, made once per configuration."""
    closed: bool = False
    """Set when a configuration change replaced or removed the lane."""

    def matches(self, pipeline: ActivePipeline) -> bool:
        spec, mine = pipeline.spec, self.pipeline.spec
        return (spec.batch, spec.dedupe) == (mine.batch, mine.dedupe)

    def close(self) -> None:
        self.closed = True
        if self.dedupe is not None:
            self.dedupe.close_all()
        self.batcher.flush()


@dataclass(slots=True)
class _Route:
    min_severity: int | None
    """The minimum severity when it is the filter's only condition on a record, else None."""
    accepts_record: Callable[[LogRecord, int], bool]
    redact_record: Callable[[FlatRecord], FlatRecord] | None
    pipeline: ActivePipeline
    lane: _Lane | None = None
    """Looked up when a record first takes this route, and again once that lane is closed."""


class Router:
    def __init__(
        self,
        bus: Bus,
        config: ConfigCache,
        templates: TemplateStore,
        *,
        fetch_batch: int = 64,
        max_inflight_batches: int = 256,
        on_new_error_template: NewErrorTemplate | None = None,
        pressure: Pressure | None = None,
        recent: RecentRecords | None = None,
    ) -> None:
        self._bus = bus
        self._pressure = pressure
        self._config = config
        self._templates = templates
        # an eighth of the consumer's window a pull: routers in several processes share that window,
        # and one that pulled all of it would leave the others idle until it had routed it all
        self._fetch_batch = min(fetch_batch, max(1, bus.settings.router_max_pending // 8))
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._lane_of: dict[int, tuple[ActivePipeline, _Lane]] = {}
        """`_lane`'s answers by the pipeline object (id, the object kept to check it), until the
        configuration changes: a lookup per routed record without building and hashing a key."""
        self._publisher = BatchPublisher(bus, self._lanes, max_inflight=max_inflight_batches)
        self._tasks: list[asyncio.Task[None]] = []
        self._slice_started = 0.0
        self._stopping = False
        self._on_new_error_template = on_new_error_template
        self._recent = recent
        # error records no pipeline took are still mined, redacted with the built-in rules
        self._default_redactor = Redactor(RedactionSpec())

    async def start(self) -> None:
        self._config.subscribe(self._on_config)
        topology = self._bus.topology
        # one reader per records partition
        partitions = [(spec, await self._bus.pull(spec)) for spec in topology.router_consumers()]
        incidents = await self._bus.pull(topology.incident_router_consumer())
        self._tasks = [
            *(
                asyncio.create_task(self._run(records, self._route), name=f"router-{spec.stream}")
                for spec, records in partitions
            ),
            asyncio.create_task(self._run(incidents, self._route_incident), name="incident-router"),
            asyncio.create_task(self._expire_groups(), name="router-dedupe"),
        ]

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        for task in self._tasks:
            await cancel_and_wait(task)
        for lane in self._lanes.values():
            lane.close()
        await self._publisher.close()

    async def _on_config(self) -> None:
        self._lane_of.clear()
        wanted = {(p.project_id, p.name): p for p in self._config.all_pipelines()}
        for key, lane in list(self._lanes.items()):
            active = wanted.get(key)
            if active is None or not lane.matches(active):
                lane.close()
                del self._lanes[key]
            else:
                lane.pipeline, lane.consumer = active, None

    async def _run(self, subscription: object, route: Callable[[Msg], Awaitable[None]]) -> None:
        fetch = subscription.fetch  # type: ignore[attr-defined]
        messages: list[Msg] = []
        while True:
            await self._publisher.wait_for_room()
            try:
                size, wait_s = next_fetch(messages, self._fetch_batch)
                messages = await fetch(size, timeout=wait_s)
                self._slice_started = time.monotonic()  # the loop ran while the fetch waited
            except (TimeoutError, NatsTimeout):
                messages = []
                continue
            except Exception:
                log.exception("router fetch failed")
                messages = []
                await asyncio.sleep(0.5)
                continue
            for msg in messages:
                try:
                    await route(msg)
                except Exception:
                    if route == self._route and not _decodes(msg.data):
                        # the view reads an attribute's bytes only when it needs them: a message
                        # that breaks one is malformed, as one that fails the first parse is
                        log.error("undecodable records message dropped", extra={"subject": msg.subject})
                        await quietly(msg.term())
                        continue
                    log.exception(
                        "router failed on a message; it will be redelivered", extra={"subject": msg.subject}
                    )
                    await quietly(msg.nak(delay=1.0))
                await self._yield()

    async def _yield(self) -> None:
        """Let the receivers that share this event loop run once routing had its slice; while they
        answer late, step back as long as the slice took (up to `_YIELD_UNDER_PRESSURE_S`): the
        router then takes at most about half of the loop, and the records wait on the bus, where
        they are safe. (A fixed pause after every message or every few hundred records would
        hold routing to a few messages per second under full ingest, far below what ingest takes
        in; a 5% pipeline then falls behind for no reason but the pause.)"""
        now = time.monotonic()
        spent = now - self._slice_started
        if spent < _SLICE_S:
            return
        if self._pressure is not None and self._pressure.high:
            await asyncio.sleep(min(spent, _YIELD_UNDER_PRESSURE_S))
        else:
            await asyncio.sleep(0)
        self._slice_started = time.monotonic()

    async def _expire_groups(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for lane in list(self._lanes.values()):
                if lane.dedupe is not None:
                    lane.dedupe.expire()

    async def _route(self, msg: Msg) -> None:
        project_id = msg.subject.split(".", 2)[2]
        headers = msg.headers or {}
        received = int(headers.get(RECEIVED_HEADER, "0") or 0)
        if self._recent is not None and msg.metadata.num_delivered == 1:
            # every record, whether or not a pipeline takes it (a redelivery was kept already)
            count = headers.get(RECORDS_HEADER)
            self._recent.keep(project_id, msg.data, received, int(count) if count else None)
        pipelines = self._config.pipelines.get(project_id)
        if not pipelines:
            # nothing to deliver to, so nothing is worth parsing (new error templates included)
            await msg.ack()
            return
        watch_errors = self._on_new_error_template is not None
        try:
            request = ViewExport.FromString(msg.data)
        except Exception:
            log.error("undecodable records message dropped", extra={"subject": msg.subject})
            await msg.term()
            return
        metadata = msg.metadata
        ticket = Ticket(msg, metadata.sequence.stream, metadata.stream)
        miner: TemplateMiner | None = None
        index = 0
        for rl in request.resource_logs:
            resource_attributes = record_attributes(rl.resource.attributes)
            context = ResourceContext(resource_attributes, str(resource_attributes.get("service.name", "")))
            candidates = [p for p in pipelines if p.filter.takes_logs and p.filter.accepts_resource(context)]
            if not candidates:
                # No pipeline takes this resource: at most its error records are looked at.
                for sl in rl.scope_logs:
                    records = sl.log_records
                    if watch_errors:
                        for record in records:
                            number = record.severity_number
                            if number >= _ERROR or (not number and _error_text(record.severity_text)):
                                miner = miner or await self._templates.miner(project_id)
                                await self._watch_error(project_id, miner, context, record, received)
                        await self._yield()
                    index += len(records)
                continue
            routes = self._routes(candidates)
            mine = self._templates.mine
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    # effective_severity only without a number (it reads the text then)
                    severity = record.severity_number or effective_severity(record)
                    flat: FlatRecord | None = None
                    template: tuple[str, str] | None = None
                    match: TemplateMatch | None = None
                    first_item: FlatRecord | None = None
                    for route in routes:
                        if route.min_severity is not None:
                            if severity < route.min_severity:
                                continue
                        elif not route.accepts_record(record, severity):
                            continue
                        if flat is None:
                            flat = flatten_view(record, resource_attributes, received, severity)
                        redact_record = route.redact_record
                        item = redact_record(flat) if redact_record is not None else dict(flat)
                        if template is None:
                            miner = miner or await self._templates.miner(project_id)
                            match = mine(project_id, miner, item["body"])
                            template = (match.template_id, match.template)
                            first_item = item
                        item["template_id"], item["template"] = template
                        lane = route.lane
                        if lane is None or lane.closed:  # none yet, or replaced while this step awaited
                            lane = route.lane = self._lane(route.pipeline)
                        if lane.dedupe is not None:
                            offered = lane.dedupe.offer(item, context.service)
                            if offered is not None:
                                lane.batcher.add(offered, ticket, index, _approx_bytes(offered))
                            continue
                        # `_approx_bytes` without its checks: a flat log record's body is a string
                        # and its attributes are dicts (a call per routed record costs as much)
                        size = len(item["body"]) + 48 * (
                            len(item["attributes"]) + len(item["resourceAttributes"])
                        )
                        lane.batcher.add(item, ticket, index, size + 320)
                    if index % _YIELD_EVERY_RECORDS == _YIELD_EVERY_RECORDS - 1:
                        await self._yield()
                    if watch_errors and severity >= _ERROR:
                        if match is None:
                            miner = miner or await self._templates.miner(project_id)
                            await self._watch_error(project_id, miner, context, record, received)
                        elif match.is_new and first_item is not None:
                            await self._new_error_template(project_id, context.service, match, first_item)
                    index += 1
        RECORDS_ROUTED.inc(index)
        if ticket.pending == 0:
            await msg.ack()

    async def _watch_error(
        self,
        project_id: str,
        miner: TemplateMiner,
        context: ResourceContext,
        record: Any,
        received: int,
    ) -> None:
        """An error record no pipeline took: its redacted body is mined (as a pipeline's record
        would be); the whole record is flattened only when its template is new, which is rare."""
        body, _ = self._default_redactor.redact_text(body_text(record.body))
        match = self._templates.mine(project_id, miner, body)
        if match.is_new:
            flat = flatten_view(record, context.attributes, received, effective_severity(record))
            item = self._default_redactor.redact_record(flat)
            await self._new_error_template(project_id, context.service, match, item)

    async def _new_error_template(
        self, project_id: str, service: str, match: TemplateMatch, item: FlatRecord
    ) -> None:
        assert self._on_new_error_template is not None
        try:
            await self._on_new_error_template(project_id, service, match, item)
        except Exception:
            log.exception("new error template not reported", extra={"project": project_id})

    async def _route_incident(self, msg: Msg) -> None:
        project_id = msg.subject.split(".", 2)[2]
        try:
            notice = IncidentNotice.model_validate_json(msg.data)
        except ValueError:
            log.error("undecodable incident message dropped", extra={"subject": msg.subject})
            await msg.term()
            return
        metadata = msg.metadata
        ticket = Ticket(msg, metadata.sequence.stream, metadata.stream)
        record: FlatRecord | None = None
        for pipeline in self._config.pipelines.get(project_id) or []:
            if not pipeline.filter.takes_incidents:
                continue
            record = record or notice.record()
            if not pipeline.filter.accepts_incident(record, notice.services):
                continue
            item = dict(record)
            if pipeline.redactor is not None:
                item = pipeline.redactor.redact_record(record)
                item["incident"] = pipeline.redactor.redact_payload(record["incident"])
            item["template_id"], item["template"] = "incident", notice.title
            # the ticket's stream keeps this origin apart from any record's (sequence, index):
            # the streams' sequences overlap, and a batch id must not
            self._lane(pipeline).batcher.add(item, ticket, "incident", _approx_bytes(item))
        if ticket.pending == 0:
            await msg.ack()

    @staticmethod
    def _routes(candidates: list[ActivePipeline]) -> list[_Route]:
        """What routing a record to each pipeline takes, looked up once per resource."""
        return [
            _Route(
                min_severity=p.filter.only_min_severity,
                accepts_record=p.filter.accepts_record,
                redact_record=p.redactor.redact_record if p.redactor else None,
                pipeline=p,
            )
            for p in candidates
        ]

    def _lane(self, pipeline: ActivePipeline) -> _Lane:
        known = self._lane_of.get(id(pipeline))
        if known is not None and known[0] is pipeline:
            return known[1]
        lane = self._lane_by_key(pipeline)
        self._lane_of[id(pipeline)] = (pipeline, lane)
        return lane

    def _lane_by_key(self, pipeline: ActivePipeline) -> _Lane:
        key = (pipeline.project_id, pipeline.name)
        lane = self._lanes.get(key)
        if lane is None:
            batch = pipeline.spec.batch
            batcher = Batcher(
                pipeline.project_id,
                pipeline.name,
                batch.max_records,
                batch.max_wait_ms,
                self._publisher.emit,
                max_bytes=self._publisher.max_batch_bytes(pipeline),
            )
            dedupe = None
            if pipeline.spec.dedupe is not None:

                def rollup(item: FlatRecord) -> None:
                    key_of_item = f"{item['template_id']}:{item['count']}:{item['last_seen']}"
                    batcher.add(item, None, key_of_item)

                dedupe = Deduplicator(pipeline.spec.dedupe, rollup, pipeline=pipeline.name)
            lane = self._lanes[key] = _Lane(pipeline, batcher, dedupe)
        return lane


def _error_text(text: str) -> bool:
    """Whether a record without a severity number is an error by its text."""
    return bool(text) and severity_from_text(text) >= _ERROR


def _approx_bytes(item: FlatRecord) -> int:
    """A cheap guess of a record's JSON size, for the batcher's byte cap."""
    body = item.get("body")
    size = len(body) if isinstance(body, str) else 256
    return size + 320 + 48 * (len(item.get("attributes") or ()) + len(item.get("resourceAttributes") or ()))


def _decodes(data: bytes) -> bool:
    """Whether `data` is an export by the whole OTLP schema."""
    try:
        ExportLogsServiceRequest.FromString(data)
    except DecodeError:
        return False
    return True
