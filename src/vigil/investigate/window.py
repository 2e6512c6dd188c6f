"""Each project's recent log records, kept for investigation whether or not a pipeline took them.

The tap is the pipeline router, which reads every records message of every project: it hands
the message's bytes to `RecentRecords.keep` before anything else, an append to the project's
shelf (no parse, no copy: the bytes are the bus message's own). Ingest pays nothing per record;
the work is done by queries, which are rare and bounded. A shelf is capped by age
(`recent_window_s`), bytes and records; the oldest messages go first. It also takes at most
`recent_max_bytes_per_s` (in bursts of eight seconds' worth): over it, messages are skipped and
counted (`skipped_records`). Kept bytes land in memory no cache holds, and at flood rates that
memory traffic, not the tap, is what keeping would cost ingest; a flood would also churn the
whole window within seconds.

The bytes on a shelf are never handed out: every record that leaves the window (a query's
samples, a tool's output, anything shown to a person or sent to a model) is flattened and redacted
first, with the built-in rules plus the custom rules and dropped attributes of every pipeline of
the project, and a grep runs on the redacted text, so a pattern cannot probe for a secret.

A process that does not run the router (the API beside pipeline workers, or as a service of its
own) asks the windows of the routers over the bus (`investigate.remote`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from nats.aio.msg import Msg
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from prometheus_client import Counter

from vigil.bus.client import Bus
from vigil.bus.topology import RECENT_QUERY_SUBJECT
from vigil.investigate.records import Counts, RecordQuery, RecordsAnswer, WindowState, record_id, top
from vigil.pipeline.config import ConfigCache
from vigil.pipeline.redact import CustomRule, RedactionSpec, Redactor
from vigil.pipeline.template_store import TemplateStore
from vigil.pipeline.templates import mask_message, template_hash
from vigil.records import FlatRecord, attributes, effective_severity, flatten
from vigil.settings import InvestigateSettings
from vigil.severity import severity_text
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BYTES_PER_RECORD_GUESS = 240
"""A message without the header is counted at this many bytes per record until a query parses it."""
MAX_SCAN_RECORDS = 200_000
"""A query looks at most this many records (newest first) and says when it stopped early."""
_YIELD_EVERY = 2_000
_LATE_SLACK_NS = 60 * 1_000_000_000
"""A record received this long before a query's `since` may still be stamped after it."""
_EXPIRE_EVERY_S = 30.0
_BURST_S = 8.0

KEPT = Counter("vigil_recent_records_kept_total", "Records messages kept for investigation.")
EVICTED = Counter("vigil_recent_records_evicted_total", "Records evicted from the recent window.", ["reason"])
SKIPPED = Counter(
    "vigil_recent_records_skipped_total", "Records not kept for investigation: over the window's rate."
)
_EVICTED_BY = {reason: EVICTED.labels(reason) for reason in ("size", "age", "projects")}


@dataclass(slots=True)
class _Message:
    received_ns: int
    data: bytes
    records: int


@dataclass
class _Shelf:
    messages: deque[_Message] = field(default_factory=deque)
    bytes: int = 0
    records: int = 0
    evicted: int = 0
    skipped: int = 0
    allowance: float = 0.0
    """Bytes the project may still add now (refilled at `recent_max_bytes_per_s`)."""
    refilled_at: float = 0.0


class RecentRecords:
    def __init__(
        self,
        settings: InvestigateSettings,
        config: ConfigCache | None = None,
        templates: TemplateStore | None = None,
        clock: Callable[[], float] = time.time,
        bus: Bus | None = None,
    ) -> None:
        self._settings = settings
        self._config = config
        self._templates = templates
        self._clock = clock
        self._shelves: dict[str, _Shelf] = {}
        self._redactors: dict[str, tuple[Any, Redactor]] = {}
        self._task: asyncio.Task[None] | None = None
        self._bus = bus
        self._subscription: Any = None

    @property
    def settings(self) -> InvestigateSettings:
        return self._settings

    @property
    def templates(self) -> TemplateStore | None:
        return self._templates

    async def start(self) -> None:
        self._task = asyncio.create_task(self._expire_all(), name="recent-records-expiry")
        if self._bus is not None:  # processes without a router of their own ask over the bus
            self._subscription = await self._bus.nc.subscribe(RECENT_QUERY_SUBJECT, cb=self._answer)

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._shelves.clear()

    async def _answer(self, msg: Msg) -> None:
        try:
            request = orjson.loads(msg.data)
            answer = await self.query(
                str(request["project_id"]), RecordQuery.model_validate(request["query"])
            )
            await msg.respond(answer.model_dump_json().encode())
        except Exception:
            log.exception("recent records query from the bus failed")

    async def _expire_all(self) -> None:
        while True:
            await asyncio.sleep(_EXPIRE_EVERY_S)
            for shelf in list(self._shelves.values()):
                self._expire(shelf)

    def keep(self, project_id: str, data: bytes, received_ns: int, records: int | None = None) -> None:
        """The tap: called with every records message the router reads."""
        shelf = self._shelves.get(project_id)
        if shelf is None:
            if len(self._shelves) >= self._settings.recent_max_projects:
                self._drop_least_recent_project()
            shelf = self._shelves[project_id] = _Shelf()
        count = records if records is not None else max(1, len(data) // BYTES_PER_RECORD_GUESS)
        if not self._allowed(shelf, len(data)):
            shelf.skipped += count
            SKIPPED.inc(count)
            return
        shelf.messages.append(_Message(received_ns or time.time_ns(), data, count))
        shelf.bytes += len(data)
        shelf.records += count
        KEPT.inc()
        if shelf.bytes > self._settings.recent_max_bytes or shelf.records > self._settings.recent_max_records:
            self._evict(shelf, "size", 0)

    def _allowed(self, shelf: _Shelf, size: int) -> bool:
        """A token bucket: keeping a message writes its bytes to memory that no cache holds, which
        at flood rates costs ingest more than anything else the window does."""
        now = time.monotonic()
        rate = self._settings.recent_max_bytes_per_s
        burst = rate * _BURST_S
        if shelf.refilled_at == 0.0:
            shelf.allowance = burst
        else:
            shelf.allowance = min(burst, shelf.allowance + (now - shelf.refilled_at) * rate)
        shelf.refilled_at = now
        if shelf.allowance < size:
            return False
        shelf.allowance -= size
        return True

    def _evict(self, shelf: _Shelf, reason: str, older_than_ns: int) -> None:
        s = self._settings
        messages = shelf.messages
        while messages and (
            shelf.bytes > s.recent_max_bytes
            or shelf.records > s.recent_max_records
            or messages[0].received_ns < older_than_ns
        ):
            gone = messages.popleft()
            shelf.bytes -= len(gone.data)
            shelf.records -= gone.records
            shelf.evicted += gone.records
            _EVICTED_BY[reason].inc(gone.records)

    def _expire(self, shelf: _Shelf) -> None:
        cutoff = int((self._clock() - self._settings.recent_window_s) * 1e9)
        self._evict(shelf, "age", cutoff)

    def _drop_least_recent_project(self) -> None:
        def newest(item: tuple[str, _Shelf]) -> int:
            messages = item[1].messages
            return messages[-1].received_ns if messages else 0

        project_id, shelf = min(self._shelves.items(), key=newest)
        _EVICTED_BY["projects"].inc(shelf.records)
        del self._shelves[project_id]

    def state(self, project_id: str) -> WindowState:
        shelf = self._shelves.get(project_id) or _Shelf()
        self._expire(shelf)
        messages = shelf.messages

        def at(ns: int) -> datetime:
            return datetime.fromtimestamp(ns / 1e9, UTC)

        return WindowState(
            messages=len(messages),
            records=shelf.records,
            bytes=shelf.bytes,
            oldest=at(messages[0].received_ns) if messages else None,
            newest=at(messages[-1].received_ns) if messages else None,
            evicted_records=shelf.evicted,
            skipped_records=shelf.skipped,
            window_s=self._settings.recent_window_s,
        )

    def redactor(self, project_id: str) -> Redactor:
        """Built-in rules, plus every custom rule and dropped attribute of the project's pipelines."""
        specs = (
            tuple(p.spec.redact for p in (self._config.pipelines.get(project_id) or []))
            if self._config
            else ()
        )
        cached = self._redactors.get(project_id)
        if cached is not None and cached[0] == specs:
            return cached[1]
        custom: dict[str, CustomRule] = {}
        dropped: dict[str, None] = {}
        for spec in specs:
            for rule in spec.custom:
                custom.setdefault(rule.name, rule)
            dropped.update(dict.fromkeys(spec.drop_attributes))
        redactor = Redactor(RedactionSpec(custom=list(custom.values()), drop_attributes=list(dropped)))
        self._redactors[project_id] = (specs, redactor)
        return redactor

    async def query(self, project_id: str, query: RecordQuery) -> RecordsAnswer:
        """Counts of every matching record scanned, and the newest `limit` of them, redacted."""
        state = self.state(project_id)
        shelf = self._shelves.get(project_id)
        messages = list(shelf.messages) if shelf is not None else []
        scan = _Scan(project_id, query, self.redactor(project_id), await self._miner(project_id))
        truncated = False
        for message in reversed(messages):
            if scan.before_window(message.received_ns):
                break
            if scan.scanned >= MAX_SCAN_RECORDS:
                truncated = True
                break
            parsed = scan.message(message)
            if shelf is not None and parsed != message.records:
                shelf.records += parsed - message.records
                message.records = parsed
            await asyncio.sleep(0)  # a query shares the event loop with ingest
        return RecordsAnswer(
            counts=scan.counts(),
            scanned=scan.scanned,
            truncated=truncated,
            records=scan.samples,
            window=state,
        )

    async def _miner(self, project_id: str) -> Any:
        if self._templates is None:
            return None
        return await self._templates.miner(project_id)


class _Scan:
    """One query's pass over the messages, newest first."""

    def __init__(self, project_id: str, query: RecordQuery, redactor: Redactor, miner: Any) -> None:
        self.project_id = project_id
        self.query = query
        self.redactor = redactor
        self.miner = miner
        self.pattern = query.pattern()
        self.since_ns = int(query.since.timestamp() * 1e9) if query.since else None
        self.until_ns = int(query.until.timestamp() * 1e9) if query.until else None
        self.trace = bytes.fromhex(query.trace_id) if query.trace_id else None
        self.scanned = 0
        self.matched = 0
        self.by_service: dict[str, int] = {}
        self.by_severity: dict[str, int] = {}
        self.by_template: dict[str, int] = {}
        self.template_texts: dict[str, str] = {}
        self.samples: list[FlatRecord] = []

    def before_window(self, received_ns: int) -> bool:
        return self.since_ns is not None and received_ns < self.since_ns - _LATE_SLACK_NS

    def message(self, message: _Message) -> int:
        """Scan one message (its records newest first); the records it holds."""
        request = ExportLogsServiceRequest()
        request.ParseFromString(message.data)
        q = self.query
        held = 0
        for rl in reversed(request.resource_logs):
            service = next(
                (kv.value.string_value for kv in rl.resource.attributes if kv.key == "service.name"), ""
            )
            total = sum(len(sl.log_records) for sl in rl.scope_logs)
            held += total
            if q.service is not None and service != q.service:
                self.scanned += total
                continue
            resource: dict[str, Any] | None = None
            for sl in reversed(rl.scope_logs):
                for record in reversed(sl.log_records):
                    self.scanned += 1
                    severity = effective_severity(record)
                    if q.severity is not None and severity < q.severity:
                        continue
                    if self.trace is not None and record.trace_id != self.trace:
                        continue
                    at = record.time_unix_nano or record.observed_time_unix_nano or message.received_ns
                    if (self.since_ns is not None and at < self.since_ns) or (
                        self.until_ns is not None and at > self.until_ns
                    ):
                        continue
                    resource = resource if resource is not None else attributes(rl.resource.attributes)
                    flat = self.redactor.redact_record(
                        flatten(record, resource, message.received_ns, severity)
                    )
                    self._offer(service, flat)
        return held

    def _offer(self, service: str, flat: FlatRecord) -> None:
        q = self.query
        if self.pattern is not None and not self.pattern.search(flat["body"]):
            return
        template_id, template = self._template(flat["body"])
        if q.template_id is not None and template_id != q.template_id:
            return
        self.matched += 1
        self.by_service[service] = self.by_service.get(service, 0) + 1
        severity = severity_text(flat["severityNumber"]) or "UNSPECIFIED"
        self.by_severity[severity] = self.by_severity.get(severity, 0) + 1
        self.by_template[template_id] = self.by_template.get(template_id, 0) + 1
        self.template_texts.setdefault(template_id, template)
        if len(self.samples) < q.limit:
            flat["template_id"], flat["template"] = template_id, template
            flat["record_id"] = record_id(self.project_id, flat)
            self.samples.append(flat)

    def _template(self, body: str) -> tuple[str, str]:
        """The project miner's template of `body` (never learning from it); for a message it has
        not seen the like of (or a project without pipelines, whose records are not mined), the
        id a new template of this message would get."""
        match = self.miner.lookup(body) if self.miner is not None else None
        if match is not None:
            return match.template_id, match.template
        template = " ".join(mask_message(body))
        return template_hash(template), template

    def counts(self) -> Counts:
        by_template = top(self.by_template)
        return Counts(
            matched=self.matched,
            by_service=top(self.by_service),
            by_severity=top(self.by_severity),
            by_template=by_template,
            templates={t: self.template_texts[t] for t in by_template},
        )
