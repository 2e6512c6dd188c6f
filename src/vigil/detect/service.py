"""The detector: spans and request/response log records in, incidents out.

It reads the spans stream (its `detector` consumer) and, with `from_records`, the records stream (a
consumer of its own: a second read of every record, so off by default), turns what it reads into request and query facts, closes event-time windows, compares them with
rolling baselines, raises signals and correlates them into incidents, which it stores. Baselines
and the correlator are saved with the incidents, so they survive restarts.

Every incident event is published on VIGIL_INCIDENTS (`vigil.incidents.<project>`) for pipelines to
route to agents. Events wait in an outbox until the bus has them; the outbox is saved with the
state, and a notice's id makes a second publication of the same event harmless.

The pipeline router reports error records whose template is new (`new_error_template`); they become
new_error_template signals, after a warm-up in which every template is new.

One detector per deployment sees every fact of a service; replicas would split a service's facts
between them (partitioning the streams by service is the way to scale it).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import Counter, Gauge

from vigil.bus.client import Bus
from vigil.bus.topology import incidents_subject
from vigil.detect.archive import EvidenceArchive
from vigil.detect.baselines import BaselineConfig, BaselineStore
from vigil.detect.error_templates import NewErrorTemplates, TemplateSignalConfig
from vigil.detect.facts import Fact, facts_from_record, facts_from_span
from vigil.detect.incidents import Correlator, IncidentConfig, IncidentEvent
from vigil.detect.notices import IncidentNotice
from vigil.detect.recorder import EvidenceRecorder
from vigil.detect.signals import Signal, evaluate
from vigil.detect.stats import ClosedWindow
from vigil.detect.windows import WindowConfig, Windower
from vigil.pipeline.templates import TemplateMatch
from vigil.receivers.ingest import RECEIVED_HEADER
from vigil.records import FlatRecord, attributes, flatten
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
INCIDENTS_OPEN = Gauge("vigil_incidents_open", "Open incidents held by this detector.")
NOTICES_PUBLISHED = Counter("vigil_incident_notices_published_total", "Incident events put on the bus.")
OUTBOX = Gauge("vigil_incident_outbox", "Incident events waiting for the bus.")
NOTICES_DROPPED = Counter(
    "vigil_incident_notices_dropped_total", "Incident events dropped from a full outbox (stored still)."
)
_OUTBOX_LIMIT = 10_000

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


def _clock(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s).strftime("%H:%M:%S")


class Detector:
    def __init__(
        self, bus: Bus, store: Store, settings: DetectSettings, evidence: EvidenceArchive | None = None
    ) -> None:
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
        self._baselines = BaselineStore(BaselineConfig.for_window(settings.window_s))
        self._incidents = Correlator(
            IncidentConfig(quiet_period_s=settings.quiet_period_s, cooldown_s=settings.cooldown_s)
        )
        self._templates = NewErrorTemplates(TemplateSignalConfig(warmup_s=settings.new_template_warmup_s))
        self._outbox: list[IncidentNotice] = []
        self._outbox_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = False
        self._announced: set[tuple[str, str]] = set()
        # the evidence of every signal, archived in the background (and swept)
        self._evidence = EvidenceRecorder(evidence) if evidence is not None else None

    async def start(self) -> None:
        if self._evidence is not None:
            await self._evidence.start()
        saved = await self._store.load_detector_state()
        if saved:
            self._baselines = BaselineStore.from_state(saved.get("baselines", {}), self._baselines.config)
            self._incidents = Correlator.from_state(saved.get("incidents", {}), self._incidents.config)
            if "templates" in saved:
                self._templates = NewErrorTemplates.from_state(saved["templates"], self._templates.config)
            self._outbox = [IncidentNotice.model_validate(n) for n in saved.get("outbox", [])]
        topology = self._bus.topology
        # before anything is published: the stream keeps only what some consumer wants
        await self._bus.ensure_consumer(topology.incident_router_consumer())
        spans = await self._bus.pull(topology.detector_consumer())
        self._tasks = [
            asyncio.create_task(self._consume(spans, self._span_facts, "spans"), name="detector-spans"),
            asyncio.create_task(self._tick(), name="detector-tick"),
            asyncio.create_task(self._publish_outbox(), name="detector-outbox"),
        ]
        if self._settings.from_records:
            for spec in topology.detector_records_consumers():  # one per records partition
                records = await self._bus.pull(spec)
                self._tasks.append(
                    asyncio.create_task(
                        self._consume(records, self._record_facts, "records"),
                        name=f"detector-records-{spec.stream}",
                    )
                )

    async def shutdown(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if self._evidence is not None:
            await self._evidence.shutdown()
        await self._save()

    async def new_error_template(
        self, project: str, service: str, match: TemplateMatch, record: FlatRecord
    ) -> None:
        """The router's report of an error record that opened a template."""
        signal = self._templates.observe(
            project=project,
            service=service,
            template_id=match.template_id,
            template=match.template,
            time_s=time.time(),
            severity_number=int(record.get("severityNumber") or 17),
            trace_id=record.get("traceId") or None,
            record=record,
        )
        self._dirty = True
        if signal is not None:
            await self._signals([signal])

    async def _consume(self, subscription: Any, facts_of: Any, source: str) -> None:
        messages: list[Msg] = []
        while True:
            try:
                messages = await subscription.fetch(*_next_pull(messages))
            except (TimeoutError, NatsTimeout):
                messages = []
                continue
            except Exception:
                log.exception("detector fetch failed", extra={"source": source})
                messages = []
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
                    self._announce(fact)
                    await self._closed(self._windows.add(fact))
                await msg.ack()
                await asyncio.sleep(0)

    def _announce(self, fact: Fact) -> None:
        """Say once per service (and start) when its first window can yield incidents: nothing
        else is heard of the detector until one opens."""
        key = (fact.project, fact.service)
        if key in self._announced:
            return
        self._announced.add(key)
        s = self._settings
        end = math.floor(fact.start_s / s.window_s) * s.window_s + s.window_s
        log.info(
            "detector: first requests of %s; its first %.0f s window closes at %s, or by %s if the "
            "service goes quiet; thresholds apply from that window, baselines after %d windows",
            fact.service,
            s.window_s,
            _clock(end + s.allowed_lateness_s),
            _clock(end + s.allowed_lateness_s + s.idle_grace_s),
            self._baselines.config.min_windows,
            extra={"project": fact.project, "service": fact.service},
        )

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
            await self._signals(signals)

    async def _signals(self, signals: list[Signal]) -> None:
        if self._evidence is not None:
            self._evidence.submit(signals)  # never waits: queued for the writer
        for signal in signals:
            SIGNALS.labels(signal.kind.value).inc()
        if signals:
            await self._events(self._incidents.observe(signals, time.time()))
            # a recurrence announces nothing, but the stored incident shows its latest window
            if recurred := self._incidents.take_recurred():
                await self._store.save_incidents(recurred)

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
        INCIDENTS_OPEN.set(len(self._incidents.open_incidents))
        self._outbox.extend(IncidentNotice.of(event) for event in events)
        if len(self._outbox) > _OUTBOX_LIMIT:
            dropped = len(self._outbox) - _OUTBOX_LIMIT
            NOTICES_DROPPED.inc(dropped)
            log.error("incident outbox full; oldest events dropped from the bus", extra={"dropped": dropped})
            del self._outbox[:dropped]
        OUTBOX.set(len(self._outbox))
        self._outbox_ready.set()

    async def _publish_outbox(self) -> None:
        delay = 0.5
        while True:
            await self._outbox_ready.wait()
            while self._outbox:
                notice = self._outbox[0]
                try:
                    await self._bus.publish(
                        incidents_subject(notice.project),
                        notice.model_dump_json().encode(),
                        msg_id=notice.msg_id,
                    )
                except Exception as exc:
                    log.warning("incident event not published; will retry", extra={"error": str(exc)})
                    self._dirty = True  # the outbox is saved with the state meanwhile
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                delay = 0.5
                # the list may have been trimmed meanwhile; remove this notice, wherever it is
                if self._outbox and self._outbox[0] is notice:
                    self._outbox.pop(0)
                NOTICES_PUBLISHED.inc()
                OUTBOX.set(len(self._outbox))
            self._outbox_ready.clear()

    async def _save(self) -> None:
        self._dirty = False
        await self._store.save_detector_state(
            {
                "baselines": self._baselines.state(),
                "incidents": self._incidents.state(),
                "templates": self._templates.state(),
                "outbox": [notice.model_dump(mode="json") for notice in self._outbox],
            }
        )


def _next_pull(previous: list[Msg]) -> tuple[int, float]:
    """Batches of up to 64 collected for up to a second while messages flow (windows are seconds
    long: one pull a second under steady traffic); idle, one lingering pull for one message,
    rather than a probe and a pull for a batch, which doubles the idle bus traffic."""
    return (64, 1.0) if previous else (1, 1.0)
