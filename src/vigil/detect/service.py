"""The detector: spans and request/response log records in, incidents out.

It reads the spans stream (its `detector` consumer) and, with `from_records`, the records stream (a
consumer of its own: a second read of every record, so off by default), turns what it reads into request and query facts, closes event-time windows, compares them with
rolling baselines, raises signals and correlates them into incidents, which it stores. Baselines
and the correlator are saved with the incidents, so they survive restarts.

One detector per deployment sees every fact of a service; replicas would split a service's facts
between them (partitioning the streams by service is the way to scale it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import Counter

from vigil.bus.client import Bus
from vigil.detect.baselines import BaselineStore
from vigil.detect.facts import Fact, facts_from_record, facts_from_span
from vigil.detect.incidents import Correlator, IncidentConfig, IncidentEvent
from vigil.detect.signals import evaluate
from vigil.detect.stats import ClosedWindow
from vigil.detect.windows import WindowConfig, Windower
from vigil.receivers.ingest import RECEIVED_HEADER
from vigil.records import attributes, flatten
from vigil.settings import DetectSettings
from vigil.store.repo import Store
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

FACTS = Counter("vigil_detect_facts_total", "Request and query facts read by the detector.", ["source"])
SIGNALS = Counter("vigil_detect_signals_total", "Signals raised.", ["kind"])
WINDOWS = Counter("vigil_detect_windows_total", "Per-service windows closed.")
INCIDENT_EVENTS = Counter(
    "vigil_incident_events_total", "Incidents opened, updated, reopened, resolved.", ["type"]
)

_REQUEST_KEYS = frozenset(
    {
        "http.route",
        "http.method",
        "http.request.method",
        "url.path",
        "http.target",
        "db.statement",
        "db.query.text",
    }
)


class Detector:
    def __init__(self, bus: Bus, store: Store, settings: DetectSettings) -> None:
        self._bus = bus
        self._store = store
        self._settings = settings
        self._windows = Windower(
            WindowConfig(
                size_s=settings.window_s,
                allowed_lateness_s=settings.allowed_lateness_s,
                idle_grace_s=settings.idle_grace_s,
            )
        )
        self._baselines = BaselineStore()
        self._incidents = Correlator(
            IncidentConfig(quiet_period_s=settings.quiet_period_s, cooldown_s=settings.cooldown_s)
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = False

    async def start(self) -> None:
        saved = await self._store.load_detector_state()
        if saved:
            self._baselines = BaselineStore.from_state(saved.get("baselines", {}))
            self._incidents = Correlator.from_state(saved.get("incidents", {}), self._incidents.config)
        topology = self._bus.topology
        spans = await self._bus.pull(topology.detector_consumer())
        self._tasks = [
            asyncio.create_task(self._consume(spans, self._span_facts, "spans"), name="detector-spans"),
            asyncio.create_task(self._tick(), name="detector-tick"),
        ]
        if self._settings.from_records:
            records = await self._bus.pull(topology.detector_records_consumer())
            self._tasks.append(
                asyncio.create_task(
                    self._consume(records, self._record_facts, "records"), name="detector-records"
                )
            )

    async def shutdown(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        await self._save()

    async def _consume(self, subscription: Any, facts_of: Any, source: str) -> None:
        while True:
            try:
                messages: list[Msg] = await subscription.fetch(64, timeout=1.0)
            except (TimeoutError, NatsTimeout):
                continue
            except Exception:
                log.exception("detector fetch failed", extra={"source": source})
                await asyncio.sleep(1.0)
                continue
            for msg in messages:
                project = msg.subject.split(".", 2)[2]
                try:
                    facts = facts_of(msg, project)
                except Exception:
                    log.exception("detector could not read a message; skipped", extra={"source": source})
                    facts = []
                FACTS.labels(source).inc(len(facts))
                for fact in facts:
                    await self._closed(self._windows.add(fact))
                await msg.ack()
                await asyncio.sleep(0)

    def _span_facts(self, msg: Msg, project: str) -> list[Fact]:
        request = ExportTraceServiceRequest()
        request.ParseFromString(msg.data)
        found: list[Fact] = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    fact = facts_from_span(span, resource, project)
                    if fact is not None:
                        found.append(fact)
        return found

    def _record_facts(self, msg: Msg, project: str) -> list[Fact]:
        request = ExportLogsServiceRequest()
        request.ParseFromString(msg.data)
        received = int((msg.headers or {}).get(RECEIVED_HEADER, "0") or 0)
        found: list[Fact] = []
        for rl in request.resource_logs:
            resource: dict[str, Any] | None = None
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    # Most records are plain log lines: look at attribute keys before building anything.
                    structured = record.body.WhichOneof("value") == "kvlist_value"
                    if not structured and not any(kv.key in _REQUEST_KEYS for kv in record.attributes):
                        continue
                    resource = resource if resource is not None else attributes(rl.resource.attributes)
                    fact = facts_from_record(flatten(record, resource, received), project)
                    if fact is not None:
                        found.append(fact)
        return found

    async def _tick(self) -> None:
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            await self._closed(self._windows.advance(now))
            await self._events(self._incidents.tick(now))
            if self._dirty and time.monotonic() - last_save > self._settings.save_every_s:
                last_save = time.monotonic()
                await self._save()

    async def _closed(self, windows: list[ClosedWindow]) -> None:
        for window in windows:
            WINDOWS.inc()
            signals = evaluate(window, self._baselines)
            self._dirty = True
            for signal in signals:
                SIGNALS.labels(signal.kind.value).inc()
            if signals:
                await self._events(self._incidents.observe(signals, time.time()))

    async def _events(self, events: list[IncidentEvent]) -> None:
        if not events:
            return
        self._dirty = True
        for event in events:
            INCIDENT_EVENTS.labels(event.type).inc()
            log.info(
                "incident %s",
                event.type,
                extra={
                    "incident": event.incident.id,
                    "project": event.incident.project,
                    "title": event.incident.title,
                },
            )
        await self._store.save_incidents([event.incident for event in events])

    async def _save(self) -> None:
        self._dirty = False
        await self._store.save_detector_state(
            {"baselines": self._baselines.state(), "incidents": self._incidents.state()}
        )
