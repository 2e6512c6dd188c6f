"""Detection path: spans and records per second through windows and signals, and memory per
1,000 active endpoints.

1. Throughput, in-process. A `Detector` (`vigil.detect.service`) is built with no bus and never
   started; its own consume loop (`Detector._consume`) reads pre-built bus messages from an
   in-memory subscription, so each message goes through the service's code exactly as in
   `vigil up`: protobuf parse and `facts_from_span` (`Detector._span_facts`) or flatten and
   `facts_from_record` (`Detector._record_facts`), `Windower.add`, and for every closed window
   `evaluate` (signals, baselines) and `Correlator.observe` (`Detector._closed`), incident events
   written to a real SQLite store. Not included: the periodic `_tick` (quiet-stream closes and
   state saves every `save_every_s`; the save's cost is measured with memory, below).
   a. spans: `ExportTraceServiceRequest` bodies of up to 512 spans (an SDK's batch), one service
      each: server spans (method, route or target, status) and their database client spans
      (statement with literals), some HTTP client calls;
   b. records (`detect.from_records`): 1,000-record `ExportLogsServiceRequest` bodies, 20%
      request/response records (method, route or target, status, duration) and 80% plain lines.
   Event time advances window by window (60 s windows, Vigil's defaults), so windows close; one
   route turns slow and one fails in the last two windows, and one runs an N+1 throughout, so
   signals and incidents are part of the work.
2. Memory, one subprocess per case: the detector's state (open windows with their sketches,
   samples and per-trace query counters; baselines with their history; the correlator) for N
   active endpoints once the baselines have learned `history` windows (10 = `min_windows`:
   thresholds relative to the baseline are on) and the open window holds a full window of
   traffic. Measured as the bytes of the objects reachable from the state (`sys.getsizeof` over
   the object graph) and, for the cases marked so, with tracemalloc as well (about three times
   slower); then the time of the periodic state save (`Detector._save`).
3. End to end (optional): `vigil up` as a subprocess, spans POSTed to its OTLP/HTTP receiver, timed
   until the detector's `vigil_detect_facts_total{source="spans"}` has counted every span.

Usage::

    .venv/bin/python bench/detection.py [--quick] [--json] [--no-e2e]
    .venv/bin/python bench/detection.py --memory-child 1000 --history 10 [--tracemalloc]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from output import print_json
from procstat import CpuWindow, load_average
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from servers import VigilProcess

from vigil.bus.client import Bus
from vigil.bus.topology import records_subject, spans_subject
from vigil.detect.facts import QueryFact, RequestFact
from vigil.detect.incidents import Correlator, IncidentConfig
from vigil.detect.service import Detector
from vigil.detect.stats import ClosedWindow
from vigil.receivers.ingest import RECEIVED_HEADER
from vigil.settings import DetectSettings
from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store
from vigil.store.sealing import SecretBox

MiB = 1024 * 1024
PROJECT = "bench"
WINDOW_S = DetectSettings().window_s
T0_NS = 1_700_000_040 * 1_000_000_000  # a whole minute: windows start on it

SERVICES = ("checkout", "orders", "catalog", "payments", "users", "inventory", "shipping", "search")
RESOURCES = ("orders", "items", "users", "carts", "payments", "products", "reviews", "invoices")
ACTIONS = ("", "/{id}", "/{id}/items", "/{id}/status", "/search")
STATEMENTS = (
    "SELECT id, status, total_cents, created_at FROM {t} WHERE customer_id = {a} ORDER BY created_at DESC LIMIT 20",
    "SELECT * FROM {t} WHERE id = {a}",
    "UPDATE {t} SET status = 'processing', updated_at = now() WHERE id = {a} AND version = {b}",
    "INSERT INTO {t} (id, customer_id, total_cents, note) VALUES ({a}, {b}, {c}, 'web order')",
    "SELECT count(*) FROM {t} WHERE tenant_id = {a} AND state IN (1, 2, 3)",
    "SELECT p.id, p.name, i.qty FROM products p JOIN {t} i ON i.product_id = p.id WHERE i.order_id = {a}",
)
PLAIN_LINES = (
    "cache refreshed for tenant {a} in {b} ms",
    "user {a} signed in from 10.0.{b}.{c}",
    "scheduled job reindex-{a} finished: {b} documents",
    "connection pool stats: active={b} idle={c} waiting=0",
    "feature flag checkout-v{b} evaluated for account {a}",
    "retrying publish of event {a} (attempt {b})",
)


@dataclass(frozen=True)
class Plan:
    services: int = 8
    routes_per_service: int = 40
    requests_per_window: int = 20  # per endpoint and 60 s window
    span_windows: int = 12
    spans_per_export: int = 512
    record_windows: int = 12
    records_per_export: int = 1000
    plain_share: float = 0.8
    # (active endpoints, closed windows, also with tracemalloc: ~3x slower, so only the small case)
    memory_cases: tuple[tuple[int, int, bool], ...] = (
        (1000, 10, True),
        (10000, 10, False),
        (1000, 33, False),
    )
    memory_requests: int = 5  # per endpoint in the last two windows (the ones before are light)
    e2e_windows: int = 3


QUICK = Plan(
    services=4,
    routes_per_service=20,
    requests_per_window=10,
    span_windows=11,
    record_windows=6,
    memory_cases=((300, 10, True), (2000, 10, False)),
    e2e_windows=1,
)


# --- traffic -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    service: int
    index: int
    method: str
    template: str  # the route as a framework reports it: /api/v1/orders/{id}
    median_ms: float
    queries: tuple[tuple[str, str, int], ...]  # statement, table, executions per request


def routes(plan: Plan, rng: random.Random) -> list[Route]:
    out = []
    for s in range(plan.services):
        for r in range(plan.routes_per_service):
            resource = RESOURCES[r % len(RESOURCES)]
            action = ACTIONS[(r // len(RESOURCES)) % len(ACTIONS)]
            version = 1 + r // (len(RESOURCES) * len(ACTIONS))
            method = "POST" if action == "" and r % 2 else ("PUT" if action == "/{id}/status" else "GET")
            queries = tuple(
                (rng.choice(STATEMENTS), rng.choice(RESOURCES), rng.choice((1, 1, 2)))
                for _ in range(rng.choice((0, 1, 1, 2)))
            )
            median = rng.lognormvariate(math.log(40), 0.6)
            out.append(Route(s, r, method, f"/api/v{version}/{resource}{action}", median, queries))
    return out


def _kv(key: str, value: str | int | float) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = value
    return kv


def _resource(plan: Plan, service: int) -> list[KeyValue]:
    name = SERVICES[service % len(SERVICES)] + ("" if service < len(SERVICES) else f"-{service}")
    return [
        _kv("service.name", name),
        _kv("service.version", f"2.{service % 5}.1"),
        _kv("deployment.environment", "production"),
        _kv("host.name", f"node-{service % 6}"),
        _kv("k8s.pod.name", f"{name}-7d9f8c6b5-{service:05d}"),
        _kv("telemetry.sdk.language", "python"),
    ]


@dataclass
class Anomalies:
    """What misbehaves from window `start` on (and the N+1 route all along)."""

    start: int
    slow: tuple[int, int] = (0, 0)  # (service, route): latency x 8
    failing: tuple[int, int] = (1, 1)  # 20% 5xx
    n_plus_one: tuple[int, int] = (2, 2)  # one statement 30 times per request, every window


@dataclass
class Request:
    route: Route
    start_ns: int
    duration_ms: float
    status: int
    trace: bytes
    queries: list[tuple[str, float]]  # statement text with literals, ms


def window_requests(
    plan: Plan, table: list[Route], window: int, rng: random.Random, anomalies: Anomalies, t0_ns: int
) -> list[list[Request]]:
    """Per service, the requests of one window in start-time order."""
    per_service: list[list[Request]] = [[] for _ in range(plan.services)]
    base_ns = t0_ns + int(window * WINDOW_S * 1e9)
    late = window >= anomalies.start
    for route in table:
        key = (route.service, route.index)
        for _ in range(plan.requests_per_window):
            start_ns = base_ns + rng.randrange(int((WINDOW_S - 2) * 1e9))
            queries: list[tuple[str, float]] = []
            for statement, tbl, times in route.queries:
                for _ in range(times):
                    text = statement.format(
                        t=tbl, a=rng.randrange(1, 10**6), b=rng.randrange(1, 99), c=rng.randrange(1, 9999)
                    )
                    queries.append((text, rng.lognormvariate(math.log(3), 0.5)))
            if key == anomalies.n_plus_one:
                queries += [
                    (f"SELECT * FROM reviews WHERE product_id = {rng.randrange(10**5)}", 1.0)
                    for _ in range(30)
                ]
            duration = route.median_ms * math.exp(rng.gauss(0, 0.3)) + sum(ms for _, ms in queries)
            if late and key == anomalies.slow:
                duration *= 8
            failing = rng.random() < (0.2 if late and key == anomalies.failing else 0.003)
            status = rng.choice((500, 503)) if failing else rng.choice((200, 200, 200, 201, 204, 404))
            per_service[route.service].append(
                Request(route, start_ns, duration, status, rng.randbytes(16), queries)
            )
    for requests in per_service:
        requests.sort(key=lambda r: r.start_ns)
    return per_service


def _concrete(template: str, rng: random.Random) -> str:
    return template.replace("{id}", str(rng.randrange(1, 10**7)))


def _add_spans(spans: Any, request: Request, service: int, rng: random.Random) -> int:
    """The request's server span, its database spans and maybe an HTTP call; returns the count."""
    route = request.route
    root_id = rng.randbytes(8)
    server: Span = spans.add()
    server.trace_id, server.span_id = request.trace, root_id
    server.name = f"{route.method} {route.template}"
    server.kind = Span.SPAN_KIND_SERVER
    server.start_time_unix_nano = request.start_ns
    server.end_time_unix_nano = request.start_ns + int(request.duration_ms * 1e6)
    if service % 2 == 0:  # current semantic conventions
        server.attributes.extend(
            [
                _kv("http.request.method", route.method),
                _kv("http.route", route.template),
                _kv("url.path", _concrete(route.template, rng)),
                _kv("http.response.status_code", request.status),
                _kv("server.address", "api.example.com"),
                _kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"),
            ]
        )
    else:  # older names, no route: the target is normalised
        server.attributes.extend(
            [
                _kv("http.method", route.method),
                _kv("http.target", _concrete(route.template, rng) + "?page=2"),
                _kv("http.status_code", request.status),
                _kv("net.host.name", "api.example.com"),
            ]
        )
    if request.status >= 500:
        server.status.code = Status.STATUS_CODE_ERROR
    count = 1
    at = request.start_ns + 200_000
    for text, ms in request.queries:
        db: Span = spans.add()
        db.trace_id, db.span_id, db.parent_span_id = request.trace, rng.randbytes(8), root_id
        db.name = text.split(" ", 1)[0]
        db.kind = Span.SPAN_KIND_CLIENT
        db.start_time_unix_nano = at
        db.end_time_unix_nano = at + int(ms * 1e6)
        at += int(ms * 1e6) + 50_000
        if service % 2 == 0:
            db.attributes.extend(
                [_kv("db.system.name", "postgresql"), _kv("db.query.text", text), _kv("db.namespace", "shop")]
            )
        else:
            db.attributes.extend(
                [_kv("db.system", "postgresql"), _kv("db.statement", text), _kv("db.name", "shop")]
            )
        count += 1
    if route.index % 10 == 3:  # a call to another service
        call: Span = spans.add()
        call.trace_id, call.span_id, call.parent_span_id = request.trace, rng.randbytes(8), root_id
        call.name = "POST"
        call.kind = Span.SPAN_KIND_CLIENT
        call.start_time_unix_nano = at
        call.end_time_unix_nano = at + 5_000_000
        call.attributes.extend(
            [
                _kv("http.request.method", "POST"),
                _kv("url.full", f"http://payments:8080/api/v1/charges/{rng.randrange(10**6)}"),
                _kv("peer.service", "payments"),
                _kv("http.response.status_code", 201),
            ]
        )
        count += 1
    return count


@dataclass
class Payloads:
    bodies: list[bytes] = field(default_factory=list)
    items: int = 0  # spans or records
    requests: int = 0  # the requests they describe
    request_items: int = 0  # records that are request/response records (records only)
    build_s: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(len(b) for b in self.bodies)


def span_payloads(plan: Plan, windows: int, seed: int = 1, t0_ns: int = T0_NS) -> Payloads:
    """Span exports of `windows` windows of traffic, each service's in its own exports, in time order."""
    started = time.perf_counter()
    rng = random.Random(seed)
    table = routes(plan, random.Random(0))
    anomalies = Anomalies(start=max(0, windows - 2))
    resources = [_resource(plan, s) for s in range(plan.services)]
    out: list[tuple[int, bytes]] = []
    open_exports: list[tuple[ExportTraceServiceRequest, Any, int, int] | None] = [None] * plan.services
    total = requests_total = 0

    def flush(s: int) -> None:
        current = open_exports[s]
        if current is not None:
            out.append((current[3], current[0].SerializeToString()))
            open_exports[s] = None

    for window in range(windows):
        for s, requests in enumerate(window_requests(plan, table, window, rng, anomalies, t0_ns)):
            for request in requests:
                current = open_exports[s]
                if current is None:
                    export = ExportTraceServiceRequest()
                    rs = export.resource_spans.add()
                    rs.resource.attributes.extend(resources[s])
                    ss = rs.scope_spans.add()
                    ss.scope.name = "opentelemetry.instrumentation.asgi"
                    current = (export, ss.spans, 0, request.start_ns)
                    open_exports[s] = current
                added = _add_spans(current[1], request, s, rng)
                total += added
                requests_total += 1
                open_exports[s] = (current[0], current[1], current[2] + added, current[3])
                if current[2] + added >= plan.spans_per_export:
                    flush(s)
    for s in range(plan.services):
        flush(s)
    out.sort(key=lambda item: item[0])
    return Payloads([body for _, body in out], total, requests_total, 0, time.perf_counter() - started)


def record_payloads(plan: Plan, windows: int, seed: int = 2) -> Payloads:
    """Log exports: per request one request/response record and, around it, plain lines."""
    started = time.perf_counter()
    rng = random.Random(seed)
    table = routes(plan, random.Random(0))
    anomalies = Anomalies(start=max(0, windows - 2))
    resources = [_resource(plan, s) for s in range(plan.services)]
    plain_per_request = round(plan.plain_share / (1 - plan.plain_share))
    out: list[tuple[int, bytes]] = []
    open_exports: list[tuple[ExportLogsServiceRequest, Any, int] | None] = [None] * plan.services
    total = requests_total = 0
    for window in range(windows):
        for s, requests in enumerate(window_requests(plan, table, window, rng, anomalies, T0_NS)):
            for request in requests:
                current = open_exports[s]
                if current is None:
                    export = ExportLogsServiceRequest()
                    rl = export.resource_logs.add()
                    rl.resource.attributes.extend(resources[s])
                    sl = rl.scope_logs.add()
                    sl.scope.name = "app.logging"
                    current = open_exports[s] = (export, sl.log_records, request.start_ns)
                records = current[1]
                route = request.route
                for i in range(plain_per_request):
                    line = records.add()
                    line.time_unix_nano = request.start_ns + i * 1_000_000
                    line.severity_number = rng.choice((5, 9, 9, 9, 13))  # type: ignore[assignment]
                    line.body.string_value = rng.choice(PLAIN_LINES).format(
                        a=rng.randrange(10**6), b=rng.randrange(1, 250), c=rng.randrange(1, 250)
                    )
                    line.attributes.extend(
                        [
                            _kv("logger.name", f"app.{route.template.split('/')[3]}"),
                            _kv("thread.name", "worker-3"),
                        ]
                    )
                    if i % 2:
                        line.trace_id, line.span_id = request.trace, rng.randbytes(8)
                access = records.add()
                access.time_unix_nano = request.start_ns
                access.severity_number = 17 if request.status >= 500 else 9  # type: ignore[assignment]
                path = _concrete(route.template, rng)
                access.body.string_value = (
                    f"{route.method} {path} {request.status} {request.duration_ms:.1f}ms"
                )
                if s % 2 == 0:
                    access.attributes.extend(
                        [
                            _kv("http.request.method", route.method),
                            _kv("http.route", route.template),
                            _kv("url.path", path),
                            _kv("http.response.status_code", request.status),
                            _kv("duration_ms", round(request.duration_ms, 3)),
                            _kv("client.address", f"10.1.{rng.randrange(256)}.{rng.randrange(256)}"),
                        ]
                    )
                else:
                    access.attributes.extend(
                        [
                            _kv("http.method", route.method),
                            _kv("http.target", path),
                            _kv("http.status_code", request.status),
                            _kv("latency_ms", round(request.duration_ms, 3)),
                        ]
                    )
                access.trace_id, access.span_id = request.trace, rng.randbytes(8)
                total += plain_per_request + 1
                requests_total += 1
                if len(records) >= plan.records_per_export:
                    out.append((current[2], current[0].SerializeToString()))
                    open_exports[s] = None
    for current in open_exports:
        if current is not None:
            out.append((current[2], current[0].SerializeToString()))
    out.sort(key=lambda item: item[0])
    return Payloads(
        [body for _, body in out], total, requests_total, requests_total, time.perf_counter() - started
    )


# --- in-process throughput -----------------------------------------------------------------------


class _Msg:
    """What `Detector._consume` reads of a JetStream message."""

    __slots__ = ("data", "headers", "subject")

    def __init__(self, subject: str, data: bytes) -> None:
        self.subject = subject
        self.data = data
        self.headers = {RECEIVED_HEADER: str(time.time_ns())}

    async def ack(self) -> None:
        return None


class _Replay:
    """A pull subscription that hands out the given messages, then reports that it is drained."""

    def __init__(self, messages: list[_Msg]) -> None:
        self._messages = messages
        self._next = 0
        self.drained = asyncio.Event()

    async def fetch(self, batch: int, timeout: float = 1.0) -> list[_Msg]:  # noqa: ASYNC109 (nats-py signature)
        if self._next >= len(self._messages):
            self.drained.set()
            await asyncio.Event().wait()  # parked until the benchmark cancels the consumer
        chunk = self._messages[self._next : self._next + batch]
        self._next += len(chunk)
        return chunk


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _metric_sum(name: str) -> float:
    """A counter summed over its labels."""
    total = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


async def open_store(directory: Path) -> Store:
    url = f"sqlite+aiosqlite:///{directory / 'vigil.db'}"
    await upgrade(url)
    return Store(create_engine(url), SecretBox.generate())


async def throughput(source: str, payloads: Payloads, tmp: Path) -> dict[str, Any]:
    """Drive a Detector's own consume loop over the payloads; time it and its parts."""
    store = await open_store(tmp)
    detector = Detector(cast(Bus, None), store, DetectSettings(from_records=source == "records"))
    facts_of = detector._span_facts if source == "spans" else detector._record_facts
    parts = {"parse_and_facts_s": 0.0, "close_s": 0.0}
    counts = {"closed_windows": 0, "endpoint_windows": 0}
    closed = detector._closed

    def timed_facts(msg: Any, project: str) -> Any:
        started = time.perf_counter()
        try:
            return facts_of(msg, project)
        finally:
            parts["parse_and_facts_s"] += time.perf_counter() - started

    async def timed_closed(windows: list[ClosedWindow]) -> None:
        if not windows:
            await closed(windows)
            return
        started = time.perf_counter()
        await closed(windows)
        parts["close_s"] += time.perf_counter() - started
        counts["closed_windows"] += len(windows)
        counts["endpoint_windows"] += sum(len(w.endpoints) for w in windows)

    detector._closed = timed_closed  # type: ignore[method-assign]
    subject = spans_subject(PROJECT) if source == "spans" else records_subject(PROJECT)
    replay = _Replay([_Msg(subject, body) for body in payloads.bodies])
    before = {
        "facts": _metric("vigil_detect_facts_total", source=source),
        "signals": _metric_sum("vigil_detect_signals_total"),
        "events": _metric_sum("vigil_incident_events_total"),
    }
    load = load_average()
    gc.collect()
    cpu = CpuWindow({"benchmark": os.getpid()})
    cpu.start()
    started = time.perf_counter()
    task = asyncio.create_task(detector._consume(replay, timed_facts, source))
    await replay.drained.wait()
    seconds = time.perf_counter() - started
    cpu.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    facts = int(_metric("vigil_detect_facts_total", source=source) - before["facts"])
    rest = seconds - parts["parse_and_facts_s"] - parts["close_s"]
    out = {
        "source": source,
        "messages": len(payloads.bodies),
        "items": payloads.items,
        "requests": payloads.requests,
        "request_items": payloads.request_items,
        "mean_message_bytes": payloads.bytes / max(1, len(payloads.bodies)),
        "facts": facts,
        "seconds": seconds,
        "items_per_s": payloads.items / seconds,
        "facts_per_s": facts / seconds,
        "us_per_item": {
            "parse_and_facts": parts["parse_and_facts_s"] / payloads.items * 1e6,
            "windows_add_and_loop": rest / payloads.items * 1e6,
            "window_close": parts["close_s"] / payloads.items * 1e6,
        },
        "closed_windows": counts["closed_windows"],
        "endpoint_windows": counts["endpoint_windows"],
        "ms_per_endpoint_window": parts["close_s"] / max(1, counts["endpoint_windows"]) * 1e3,
        "signals": int(_metric_sum("vigil_detect_signals_total") - before["signals"]),
        "incident_events": int(_metric_sum("vigil_incident_events_total") - before["events"]),
        "open_incidents": len(detector._incidents.open_incidents),
        "baselines": len(detector._baselines),
        "late_facts": detector._windows.late_facts,
        "cores_used": cpu.cores_used,
        "load_before": load,
        "build_s": payloads.build_s,
    }
    await store.close()
    return out


# --- memory (a subprocess per case) --------------------------------------------------------------


def _memory_facts(
    endpoints: int, window: int, requests: int, rng: random.Random, failing: set[int]
) -> list[RequestFact | QueryFact]:
    """One window of facts over `endpoints` server endpoints, 100 per service; with more than 3
    requests per endpoint, each request runs two statements, one of them twice."""
    base = T0_NS / 1e9 + window * WINDOW_S
    facts: list[RequestFact | QueryFact] = []
    for e in range(endpoints):
        service = f"svc-{e // 100:03d}"
        route = f"/api/v1/{RESOURCES[e % len(RESOURCES)]}/{{id}}/r{e % 100}"
        for _ in range(requests):
            start = base + rng.random() * (WINDOW_S - 2)
            trace = f"{rng.getrandbits(128):032x}"
            status = 500 if e in failing else 200
            facts.append(
                RequestFact(
                    project=PROJECT,
                    service=service,
                    kind="server",
                    method="GET",
                    route=route,
                    status=status,
                    is_error=status >= 500,
                    duration_ms=40 * math.exp(rng.gauss(0, 0.4)),
                    start_s=start,
                    trace_id=trace,
                    span_id=f"{rng.getrandbits(64):016x}",
                )
            )
            if requests > 3:
                for k, times in ((0, 1), (1, 2)):
                    for i in range(times):
                        facts.append(
                            QueryFact(
                                project=PROJECT,
                                service=service,
                                db_system="postgresql",
                                statement=f"SELECT * FROM t{e % 100}_{k} WHERE id = ?",
                                duration_ms=2.0 + i,
                                start_s=start + 0.001 * (i + 1),
                                trace_id=trace,
                                span_id=f"{rng.getrandbits(64):016x}",
                            )
                        )
    facts.sort(key=lambda f: f.start_s)
    return facts


_NOT_STATE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def reachable_bytes(root: Any, seen: set[int]) -> int:
    """`sys.getsizeof` summed over the objects reachable from `root` and not in `seen` (classes,
    modules and functions excluded): what the state holds, without tracemalloc's overhead."""
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _NOT_STATE):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def _window_parts(windower: Any, seen: set[int]) -> dict[str, int]:
    """The open windows' bytes by what holds them (reads the windower's internals; empty if they
    changed): sample facts, latency sketches, trace bookkeeping (per-trace query counters and the
    trace -> endpoint maps of this window and the one before)."""
    parts = {"samples": 0, "sketches": 0, "traces": 0}
    try:
        for stream in windower._streams.values():
            for window in stream.windows.values():
                for acc in window.endpoints.values():
                    parts["samples"] += reachable_bytes(acc.slow, seen) + reachable_bytes(acc.errs, seen)
                    parts["sketches"] += reachable_bytes(acc.sketch, seen)
                for held in (window.per_trace, window.untraced, window.routes):
                    parts["traces"] += reachable_bytes(held, seen)
            parts["traces"] += reachable_bytes(stream.prev_routes, seen)
    except AttributeError:
        return {}
    return parts


async def memory_child(endpoints: int, history: int, requests: int, trace: bool) -> dict[str, Any]:
    """The state of a Detector that has closed `history` windows and counted one more.

    Every endpoint is active in every window. The windows before the last two are light (3
    requests per endpoint: enough for the baselines to learn latency and error rate); the last
    closed one and the open one have `requests` requests per endpoint with three queries each. In
    the last closed window 1% of the endpoints fail every request, so the correlator holds
    incidents. Facts go through `Windower.add` and `Detector._closed`, as in the service.
    """
    if trace:
        tracemalloc.start()
    tmp = tempfile.TemporaryDirectory(prefix="vigil-bench-detect-mem-")
    store = await open_store(Path(tmp.name))
    rng = random.Random(endpoints)
    # warm-up: the code paths' one-time allocations (caches, compiled validators) are not state
    warm = Detector(cast(Bus, None), store, DetectSettings())
    for window in range(3):
        for fact in _memory_facts(20, window, requests, rng, {0} if window == 1 else set()):
            await warm._closed(warm._windows.add(fact))
    del warm
    gc.collect()
    base = tracemalloc.get_traced_memory()[0] if trace else 0

    detector = Detector(cast(Bus, None), store, DetectSettings())
    failing = set(range(0, endpoints, 100))
    started = time.perf_counter()
    for window in range(history + 1):
        facts = _memory_facts(
            endpoints,
            window + 10,  # after the warm-up's windows
            requests if window >= history - 1 else 3,
            rng,
            failing if window == history - 1 else set(),
        )
        for fact in facts:
            await detector._closed(detector._windows.add(fact))
        del facts
    build_s = time.perf_counter() - started
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base if trace else 0
    baselines = detector._baselines
    out: dict[str, Any] = {
        "endpoints": endpoints,
        "history": history,
        "requests_per_window": requests,
        "open_windows": detector._windows.open_windows,
        "baselines": len(baselines),
        "ready_baselines": sum(
            1
            for key in list(baselines._entries)
            if (snap := baselines.snapshot(*key)) is not None and snap.ready("p95_ms") is not None
        ),
        "detector_points": max(
            (len(b.detector.values) for b in baselines._entries.values() if b.detector is not None), default=0
        ),
        "open_incidents": len(detector._incidents.open_incidents),
        "build_s": build_s,
    }
    seen: set[int] = set()
    out["window_parts_bytes"] = _window_parts(detector._windows, seen)
    reachable = {
        "windows": reachable_bytes(detector._windows, seen) + sum(out["window_parts_bytes"].values()),
        "incidents": reachable_bytes(detector._incidents, seen),
        "baselines": reachable_bytes(detector._baselines, seen),
    }
    del seen
    out["reachable_bytes"] = sum(reachable.values())
    out["reachable_parts_bytes"] = reachable
    incidents = detector._incidents.state()
    if trace:
        gc.collect()
        parts: dict[str, int] = {}
        for name in ("_windows", "_incidents"):
            before = tracemalloc.get_traced_memory()[0]
            setattr(detector, name, None)
            gc.collect()
            parts[name.strip("_")] = before - tracemalloc.get_traced_memory()[0]
        parts["baselines"] = traced - sum(parts.values())
        out["traced_bytes"] = traced
        out["traced_parts_bytes"] = parts
        tracemalloc.stop()  # the save below is timed without tracemalloc's overhead
        detector._incidents = Correlator.from_state(incidents, IncidentConfig())
    # the periodic save (every `save_every_s` while the state changed)
    started = time.perf_counter()
    out["state_json_bytes"] = len(
        json.dumps({"baselines": baselines.state(), "incidents": detector._incidents.state()})
    )
    out["state_dump_s"] = time.perf_counter() - started
    started = time.perf_counter()
    await detector._save()
    out["save_s"] = time.perf_counter() - started
    await store.close()
    tmp.cleanup()
    return out


def memory(plan: Plan) -> list[dict[str, Any]]:
    runs = []
    for endpoints, history, trace in plan.memory_cases:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--memory-child",
            str(endpoints),
            "--history",
            str(history),
            "--requests",
            str(plan.memory_requests),
        ] + (["--tracemalloc"] if trace else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"the memory run failed:\n{done.stderr[-2000:]}")
        case: dict[str, Any] = json.loads(done.stdout)
        case["mib_per_1000"] = case["reachable_bytes"] / MiB / (endpoints / 1000)
        runs.append(case)
        traced = f", tracemalloc {case['traced_bytes'] / MiB:.1f} MiB" if trace else ""
        print(
            f"   memory {endpoints:,} endpoints, {history} windows: {case['reachable_bytes'] / MiB:.1f} MiB"
            f" ({case['mib_per_1000']:.2f} MiB per 1,000){traced}, save {case['save_s']:.2f} s"
            f" (built in {case['build_s']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return runs


# --- end to end through `vigil up` -----------------------------------------------------------


def _facts_counted(vigil: VigilProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{vigil.api_port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "vigil_detect_facts_total" and sample.labels.get("source") == "spans":
                return sample.value
    return 0.0


def end_to_end(plan: Plan, tmp: Path) -> dict[str, Any]:
    """Spans POSTed to `vigil up`'s receiver, timed until its detector has counted them all.

    Event times start a minute before now, so the detector's tick (which closes windows older than
    now - allowed_lateness - idle_grace) closes nothing early and late drops are not the work."""
    minute = 60_000_000_000
    payloads = span_payloads(
        plan, plan.e2e_windows, seed=3, t0_ns=(time.time_ns() - minute) // minute * minute
    )
    vigil = VigilProcess(tmp / "detect-e2e")
    vigil.start()
    try:
        _, key = vigil.project_with_key()
        url = f"http://127.0.0.1:{vigil.otlp_http_port}/v1/traces"
        headers = {"Content-Type": "application/x-protobuf", "X-API-Key": key}
        load = load_average()
        cpu = CpuWindow({"vigil": vigil.pid, "nats-server": vigil.nats_pid, "benchmark": os.getpid()})
        cpu.start()
        started = time.perf_counter()
        with httpx.Client(timeout=60) as client:
            for body in payloads.bodies:
                client.post(url, content=body, headers=headers).raise_for_status()
        posted_s = time.perf_counter() - started
        counted, last_change, last = 0.0, time.perf_counter(), -1.0
        while counted < payloads.items and time.perf_counter() - last_change < 15:
            time.sleep(0.1)
            counted = _facts_counted(vigil)
            if counted != last:
                last, last_change = counted, time.perf_counter()
        seconds = last_change - started
        cpu.stop()
    finally:
        vigil.stop()
    return {
        "spans": payloads.items,
        "messages": len(payloads.bodies),
        "facts_counted": int(counted),
        "posted_s": posted_s,
        "seconds": seconds,
        "spans_per_s": counted / seconds,
        "cores_used": cpu.cores_used,
        "load_before": load,
    }


# --- main --------------------------------------------------------------------------------------


async def in_process(plan: Plan, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    spans = span_payloads(plan, plan.span_windows)
    print(f"   built {spans.items:,} spans in {spans.build_s:.1f} s", file=sys.stderr, flush=True)
    (tmp / "spans").mkdir()
    out["spans"] = await throughput("spans", spans, tmp / "spans")
    del spans
    records = record_payloads(plan, plan.record_windows)
    print(f"   built {records.items:,} records in {records.build_s:.1f} s", file=sys.stderr, flush=True)
    (tmp / "records").mkdir()
    out["records"] = await throughput("records", records, tmp / "records")
    for source in ("spans", "records"):
        r = out[source]
        print(
            f"   {source}: {r['items_per_s']:,.0f}/s ({r['facts_per_s']:,.0f} facts/s), {r['closed_windows']}"
            f" windows closed, {r['signals']} signals, {r['incident_events']} incident events",
            file=sys.stderr,
            flush=True,
        )
    return out


def run(plan: Plan, tmp: Path, e2e: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    out: dict[str, Any] = {"plan": asdict(plan), "window_s": WINDOW_S}
    out.update(asyncio.run(in_process(plan, tmp)))
    out["memory"] = memory(plan)
    if e2e:
        out["e2e"] = end_to_end(plan, tmp)
        print(f"   end to end: {out['e2e']['spans_per_s']:,.0f} spans/s", file=sys.stderr, flush=True)
    out["elapsed_s"] = time.monotonic() - started
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--no-e2e", action="store_true", help="skip the run through `vigil up`")
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--history", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.memory_child:
        result = asyncio.run(memory_child(args.memory_child, args.history, args.requests, args.tracemalloc))
        print_json(result)
        return
    with tempfile.TemporaryDirectory(prefix="vigil-bench-detect-") as tmp:
        out = run(QUICK if args.quick else Plan(), Path(tmp), e2e=not args.no_e2e)
    print_json(out, indent=None if args.json else 1)


if __name__ == "__main__":
    main()
