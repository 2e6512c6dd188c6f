"""Every kind of span signal end to end: seeded traffic goes through the real OTLP receivers from the
OpenTelemetry SDK's exporters, the detector reads it off the bus, and the API shows the incidents.

Each kind is raised on a scripted regression and not on steady traffic with normal noise (latency
jitter, occasional errors, an occasional cold query); related signals of two services linked by
trace are one incident; a regression lasting several windows is one incident; baselines survive a
restart; and request facts also come from log records through the logs receiver.

How the windows are fed without waiting for them: the detector's windows close in event time (a
service's window closes when a fact of a later window arrives, see `vigil.detect.windows`), so the
tests write spans and records with explicit timestamps an hour in the past, window after window.
`idle_grace_s` is large, so the detector's own clock never closes a window while it is being fed;
the last window of a phase is closed by a marker request (`GET /healthz`, one request: too few for
any signal) at the start of the next window. After a phase the test flushes the SDK and waits until
the detector's consumer has acknowledged every message (it acknowledges a message once its facts
are windowed and any incident saved), checks that the expected number of windows was closed, and
reads the API.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context

from tests.conftest import VigilHandle, make_settings, running
from tests.otel import OtelLogs, OtelTraces, log_at, span_exporter
from vigil.bus.topology import DETECTOR_CONSUMER, DETECTOR_RECORDS_CONSUMER, RECORDS_STREAM, SPANS_STREAM
from vigil.settings import Settings

WINDOW_S = 10.0  # of event time: the tests never wait for a window to pass
STEADY = 12  # steady windows before a regression: a baseline is ready after 10 (BaselineConfig.min_windows)
REGRESSION = 3  # windows a regression lasts
ROUTE = "/orders/{id}"
ENDPOINT = f"GET {ROUTE}"
ORDERS = "SELECT * FROM orders WHERE id = ?"
ITEMS = "SELECT * FROM items WHERE order_id = ?"
LOOKUP = "SELECT value FROM settings WHERE key = ?"
MARKER = "/healthz"


def detect_settings(data_dir: Path, **detect: Any) -> Settings:
    return make_settings(
        data_dir,
        detect={"window_s": WINDOW_S, "allowed_lateness_s": 0.0, "idle_grace_s": 86_400.0, **detect},
    )


def epoch() -> float:
    """The start of window 0: an hour ago, on a window boundary."""
    return math.floor(time.time() / WINDOW_S) * WINDOW_S - 3600.0


def ns(seconds: float) -> int:
    return int(seconds * 1e9)


# --- what the API and the detector say ------------------------------------------------------------


async def metrics(vigil: VigilHandle) -> dict[str, float]:
    """The process's Prometheus samples by name and labels, e.g. `vigil_detect_windows_total`."""
    text = (await vigil.api.get("/metrics")).text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def settle(vigil: VigilHandle, stream: str = SPANS_STREAM, consumer: str = DETECTOR_CONSUMER) -> None:
    """Wait until the detector has read and acknowledged every message on its stream."""
    assert vigil.runtime.bus is not None
    js = vigil.runtime.bus.js
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        info = await js.consumer_info(stream, consumer)
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        assert loop.time() < deadline, f"the detector did not catch up: {info}"
        await asyncio.sleep(0.05)


async def incidents(vigil: VigilHandle, project_id: str) -> list[dict[str, Any]]:
    response = await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def wait_for_incidents(vigil: VigilHandle, project_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The project's incidents in full (signals, timeline), once there are at least `count`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(found := await incidents(vigil, project_id)) < count:
        assert loop.time() < deadline, f"{len(found)} incidents opened, expected {count}"
        await asyncio.sleep(0.1)
    details = []
    for summary in found:
        response = await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{summary['id']}")
        assert response.status_code == 200, response.text
        details.append(response.json())
    return details


def kinds(incident: dict[str, Any]) -> set[str]:
    return {signal["kind"] for signal in incident["signals"]}


class Counters:
    """What the detector did since the last `take`: windows closed, facts read, signals raised."""

    def __init__(self, vigil: VigilHandle, source: str = "spans") -> None:
        self.vigil = vigil
        self.facts = f'vigil_detect_facts_total{{source="{source}"}}'
        self.last: dict[str, float] = {}

    async def take(self) -> tuple[int, int, dict[str, int]]:
        """(windows closed, facts read, signals raised by kind)"""
        now = await metrics(self.vigil)
        delta = {name: int(value - self.last.get(name, 0.0)) for name, value in now.items()}
        self.last = now
        prefix = 'vigil_detect_signals_total{kind="'
        signals = {k[len(prefix) : -2]: n for k, n in delta.items() if k.startswith(prefix) and n}
        return delta.get("vigil_detect_windows_total", 0), delta.get(self.facts, 0), signals


# --- traffic -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """How GET /orders/{id} behaves in one window; the defaults are steady traffic with its noise."""

    requests: int = 30
    median_ms: float = 60.0  # the handler's own time; its queries add theirs
    sigma: float = 0.35  # log-normal jitter of that time
    error_rate: float = 0.02  # occasional 500s: about one every other window
    items: tuple[int, int] = (1, 3)  # item queries per request
    cold_query_rate: float = 0.03  # queries that take about six times as long
    lookups: int = 0  # settings look-ups per request
    slow_query_ms: float | None = None  # one request of the window waits this long on its order query
    n_plus_one: int | None = None  # one request of the window loads its items one by one, this many


class Shop:
    """A service serving GET /orders/{id} (and other routes) with database queries under it, as
    spans with explicit times through the SDK's batching exporter."""

    def __init__(self, traces: OtelTraces, seed: int, t0: float) -> None:
        self.traces = traces
        self.rng = random.Random(seed)
        self.t0 = t0
        self.spans = 0

    def query_ms(self, median: float, load: Load) -> float:
        cold = 6.0 if self.rng.random() < load.cold_query_rate else 1.0
        return median * cold * math.exp(self.rng.gauss(0, 0.5))

    def request(
        self, t: float, route: str, own_ms: float, status: int, queries: Iterable[tuple[str, float]]
    ) -> None:
        tracer = self.traces.tracer
        server = tracer.start_span(
            f"GET {route}",
            kind=SpanKind.SERVER,
            start_time=ns(t),
            attributes={
                "http.request.method": "GET",
                "http.route": route,
                "url.path": route.replace("{id}", str(self.rng.randrange(1, 10_000))),
                "http.response.status_code": status,
            },
        )
        context = set_span_in_context(server)
        cursor = ns(t + 0.001)
        for text, ms in queries:
            query = tracer.start_span(
                text.split(" WHERE")[0],
                kind=SpanKind.CLIENT,
                context=context,
                start_time=cursor,
                attributes={"db.system.name": "postgresql", "db.query.text": text},
            )
            cursor += ns(ms / 1000)
            query.end(end_time=cursor)
            self.spans += 1
        if status >= 500:
            server.set_status(Status(StatusCode.ERROR))
        server.end(end_time=cursor + ns(own_ms / 1000))
        self.spans += 1

    def window(self, index: int, load: Load, route: str = ROUTE) -> None:
        rng = self.rng
        start = self.t0 + index * WINDOW_S
        special = load.requests // 2
        for n, t in enumerate(sorted(start + rng.random() * WINDOW_S / 2 for _ in range(load.requests))):
            order = rng.randrange(1, 100_000)
            items = load.n_plus_one if n == special and load.n_plus_one else rng.randint(*load.items)
            queries = [
                (f"SELECT * FROM items WHERE order_id = {order}", self.query_ms(3.0, load))
                for _ in range(items)
            ]
            queries += [
                (f"SELECT value FROM settings WHERE key = 'k{rng.randrange(50)}'", self.query_ms(1.0, load))
                for _ in range(load.lookups)
            ]
            slow = load.slow_query_ms if n == special else None
            queries.append((f"SELECT * FROM orders WHERE id = {order}", slow or self.query_ms(4.0, load)))
            status = 500 if rng.random() < load.error_rate else 200
            self.request(t, route, load.median_ms * math.exp(rng.gauss(0, load.sigma)), status, queries)

    def marker(self, index: int) -> None:
        """One request at the start of window `index`, which closes the window before it."""
        self.request(self.t0 + index * WINDOW_S, MARKER, 1.0, 200, ())

    def run(self, indexes: Iterable[int], *loads: tuple[Load, str]) -> None:
        """Windows of traffic, then the marker that closes the last one (call in a thread)."""
        last = -1
        for index in indexes:
            for load, route in loads:
                self.window(index, load, route)
            # flush every window: the SDK's queue holds 2048 spans and drops the rest
            assert self.traces.provider.force_flush(10_000)
            last = index
        self.marker(last + 1)
        assert self.traces.provider.force_flush(10_000)


def shop_traces(vigil: VigilHandle, key: str, service: str = "shop") -> OtelTraces:
    return OtelTraces(service, span_exporter(api_key=key, http_url=vigil.receiver_url))


# --- each kind of span signal ---------------------------------------------------------------------

# the regression, the kinds it must raise (a slow endpoint is also a regression from its baseline),
# and what the signal is about
REGRESSIONS: dict[str, tuple[Load, set[str], dict[str, str]]] = {
    "error_rate_spike": (Load(error_rate=0.5), {"error_rate_spike"}, {"endpoint": ENDPOINT}),
    "latency_regression": (
        Load(median_ms=400.0, sigma=0.15),  # p95 ~600 ms: over twice the baseline, under 1 s
        {"latency_regression"},
        {"endpoint": ENDPOINT},
    ),
    "slow_endpoint": (
        Load(median_ms=1500.0, sigma=0.15),
        {"slow_endpoint", "latency_regression"},
        {"endpoint": ENDPOINT},
    ),
    "slow_query": (Load(slow_query_ms=900.0), {"slow_query"}, {"statement": ORDERS}),
    "n_plus_one": (Load(n_plus_one=30), {"n_plus_one"}, {"statement": ITEMS, "endpoint": ENDPOINT}),
    # 10 look-ups per request: 300 a window, over three times the busiest query's baseline (~60),
    # and too few within one request for an N+1
    "high_frequency_query": (Load(lookups=10), {"high_frequency_query"}, {"statement": LOOKUP}),
}


@pytest.mark.parametrize("kind", list(REGRESSIONS))
async def test_each_kind_is_raised_on_its_regression_and_not_on_steady_traffic(
    tmp_path: Path, kind: str
) -> None:
    load, expected, subject = REGRESSIONS[kind]
    async with running(detect_settings(tmp_path / "vigil")) as vigil:
        project_id, key = await vigil.project_with_key()
        shop = Shop(shop_traces(vigil, key), seed=list(REGRESSIONS).index(kind), t0=epoch())
        counters = Counters(vigil)
        await counters.take()

        await asyncio.to_thread(shop.run, range(STEADY), (Load(), ROUTE))
        await settle(vigil)
        # every span became a fact (none late), every window closed, no signal
        assert await counters.take() == (STEADY, shop.spans, {})
        assert await incidents(vigil, project_id) == []

        spans_before = shop.spans
        await asyncio.to_thread(shop.run, range(STEADY, STEADY + REGRESSION), (load, ROUTE))
        await settle(vigil)
        # each kind raised in every window of the regression...
        assert await counters.take() == (
            REGRESSION,
            shop.spans - spans_before,
            dict.fromkeys(expected, REGRESSION),
        )
        found = await wait_for_incidents(vigil, project_id)
        await asyncio.to_thread(shop.traces.close)

    assert len(found) == 1, [i["title"] for i in found]  # ...and one incident for the whole of it
    incident = found[0]
    assert incident["status"] == "open" and incident["services"] == ["shop"]
    assert kinds(incident) == expected, incident["title"]
    assert incident["timeline"][0]["event"] == "opened"
    for signal in incident["signals"]:
        assert signal["service"] == "shop" and signal["value"] >= signal["threshold"]
        assert signal["evidence"]["trace_ids"]
        if signal["kind"] == kind:
            assert {name: signal[name] for name in subject} == subject
    lead = next(s for s in incident["signals"] if s["kind"] == kind)
    if kind == "n_plus_one":
        assert lead["value"] == 30
    if kind == "high_frequency_query":
        assert lead["value"] == 300
    if kind in ("latency_regression", "slow_endpoint"):
        baseline = lead["evidence"]["baseline"]
        assert baseline["windows"] >= STEADY and baseline["metrics"]["p95_ms"]["ready"]
        assert lead["value"] >= 2 * baseline["metrics"]["p95_ms"]["value"]


async def test_the_api_shows_every_window_an_incident_recurs_in(tmp_path: Path) -> None:
    async with running(detect_settings(tmp_path / "vigil")) as vigil:
        project_id, key = await vigil.project_with_key()
        shop = Shop(shop_traces(vigil, key), seed=7, t0=epoch())
        counters = Counters(vigil)
        await counters.take()
        await asyncio.to_thread(shop.run, range(REGRESSION), (Load(slow_query_ms=900.0), ROUTE))
        await settle(vigil)
        assert (await counters.take())[::2] == (REGRESSION, {"slow_query": REGRESSION})
        (incident,) = await wait_for_incidents(vigil, project_id)
        await asyncio.to_thread(shop.traces.close)

    (signal,) = incident["signals"]
    assert incident["occurrences"][signal["fingerprint"]] == REGRESSION
    assert incident["last_window_end"] == shop.t0 + REGRESSION * WINDOW_S
    assert signal["window_start"] == shop.t0 + (REGRESSION - 1) * WINDOW_S


# --- related signals of two services --------------------------------------------------------------

STOCK = "SELECT qty FROM stock WHERE sku = ?"


class Checkout:
    """frontend (GET /checkout) calls inventory (GET /stock/{id}), which queries its database; the
    trace context goes along, as instrumented HTTP clients and servers pass it. mailer, in the same
    project, has nothing to do with them."""

    def __init__(self, frontend: OtelTraces, inventory: OtelTraces, mailer: OtelTraces, t0: float) -> None:
        self.frontend, self.inventory, self.mailer = frontend, inventory, mailer
        self.rng = random.Random(42)
        self.t0 = t0

    def checkout(self, t: float, query_ms: float) -> None:
        sku = self.rng.randrange(1, 5000)
        query = query_ms * math.exp(self.rng.gauss(0, 0.2))
        start = ns(t)
        ms = 1_000_000
        # each span's time is its child's plus a little: the slowest checkouts are the slowest queries
        server = self.frontend.tracer.start_span(
            "GET /checkout",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={
                "http.request.method": "GET",
                "http.route": "/checkout",
                "http.response.status_code": 200,
            },
        )
        client = self.frontend.tracer.start_span(
            "GET",
            kind=SpanKind.CLIENT,
            context=set_span_in_context(server),
            start_time=start + 5 * ms,
            attributes={
                "http.request.method": "GET",
                "url.full": f"http://inventory:8080/stock/{sku}",
                "peer.service": "inventory",
                "http.response.status_code": 200,
            },
        )
        served = self.inventory.tracer.start_span(
            "GET /stock/{id}",
            kind=SpanKind.SERVER,
            context=set_span_in_context(client),
            start_time=start + 6 * ms,
            attributes={
                "http.request.method": "GET",
                "http.route": "/stock/{id}",
                "http.response.status_code": 200,
            },
        )
        db = self.inventory.tracer.start_span(
            "SELECT stock",
            kind=SpanKind.CLIENT,
            context=set_span_in_context(served),
            start_time=start + 7 * ms,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": f"SELECT qty FROM stock WHERE sku = {sku}",
            },
        )
        end = start + 7 * ms + ns(query / 1000)
        spans: list[tuple[Span, int]] = [(db, 0), (served, 3), (client, 5), (server, 20)]
        for span, extra_ms in spans:
            span.end(end_time=end + extra_ms * ms)

    def send(self, t: float, median_ms: float) -> None:
        span = self.mailer.tracer.start_span(
            "POST /send",
            kind=SpanKind.SERVER,
            start_time=ns(t),
            attributes={
                "http.request.method": "POST",
                "http.route": "/send",
                "http.response.status_code": 202,
            },
        )
        span.end(end_time=ns(t) + ns(median_ms * math.exp(self.rng.gauss(0, 0.2)) / 1000))

    def run(self, indexes: range, query_ms: float, mail_ms: float) -> None:
        services = (self.frontend, self.inventory, self.mailer)
        for index in indexes:
            start = self.t0 + index * WINDOW_S
            for t in sorted(start + self.rng.random() * WINDOW_S / 2 for _ in range(10)):
                self.checkout(t, query_ms)
                self.send(t + 0.0005, mail_ms)
        for traces in services:  # close the last window of each service
            marker = traces.tracer.start_span(
                f"GET {MARKER}",
                kind=SpanKind.SERVER,
                start_time=ns(self.t0 + indexes.stop * WINDOW_S),
                attributes={
                    "http.request.method": "GET",
                    "http.route": MARKER,
                    "http.response.status_code": 200,
                },
            )
            marker.end(end_time=ns(self.t0 + indexes.stop * WINDOW_S + 0.001))
            assert traces.provider.force_flush(10_000)


async def test_related_signals_in_two_services_are_one_incident(tmp_path: Path) -> None:
    async with running(detect_settings(tmp_path / "vigil")) as vigil:
        project_id, key = await vigil.project_with_key()
        # the two services export over both receivers: OTLP/HTTP and OTLP/gRPC
        frontend = OtelTraces("frontend", span_exporter(api_key=key, http_url=vigil.receiver_url))
        inventory = OtelTraces("inventory", span_exporter(api_key=key, grpc_target=vigil.grpc_target))
        mailer = OtelTraces("mailer", span_exporter(api_key=key, http_url=vigil.receiver_url))
        traffic = Checkout(frontend, inventory, mailer, epoch())
        counters = Counters(vigil)
        await counters.take()

        await asyncio.to_thread(traffic.run, range(3), 5.0, 40.0)
        await settle(vigil)
        assert (await counters.take())[::2] == (3 * 3, {})
        assert await incidents(vigil, project_id) == []

        # inventory's stock query slows down to over a second, and with it every checkout; the
        # mailer, unrelated, slows down at the same time
        await asyncio.to_thread(traffic.run, range(3, 5), 1200.0, 1500.0)
        await settle(vigil)
        # per window: GET /checkout and its call to inventory, GET /stock/{id} and its query, POST /send
        assert (await counters.take())[::2] == (2 * 3, {"slow_endpoint": 2 * 4, "slow_query": 2})
        found = await wait_for_incidents(vigil, project_id, count=2)
        for traces in (frontend, inventory, mailer):
            await asyncio.to_thread(traces.close)
        checkout_spans = frontend.finished.get_finished_spans()

    assert len(found) == 2, [(i["title"], i["services"]) for i in found]
    joined = next(i for i in found if "inventory" in i["services"])
    alone = next(i for i in found if i is not joined)
    assert sorted(joined["services"]) == ["frontend", "inventory"]
    about = {(s["service"], s["kind"], s["endpoint"] or s["statement"]) for s in joined["signals"]}
    assert {
        ("frontend", "slow_endpoint", "GET /checkout"),
        ("inventory", "slow_endpoint", "GET /stock/{id}"),
    } <= about, about
    slow_query = next(s for s in joined["signals"] if s["kind"] == "slow_query")
    assert slow_query["service"] == "inventory" and slow_query["statement"] == STOCK
    # what joins them: the traces the slow query's evidence names are frontend checkouts
    checkouts = {f"{span.context.trace_id:032x}" for span in checkout_spans if span.name == "GET /checkout"}
    assert slow_query["evidence"]["trace_ids"] and set(slow_query["evidence"]["trace_ids"]) <= checkouts
    assert kinds(joined) == {"slow_endpoint", "slow_query"}
    # the mailer slowed down in the same windows but shares no trace: an incident of its own
    assert alone["services"] == ["mailer"] and kinds(alone) == {"slow_endpoint"}


# --- baselines across a restart -------------------------------------------------------------------


async def test_baselines_are_kept_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "vigil"
    t0 = epoch()
    async with running(detect_settings(data_dir)) as vigil:
        project_id, key = await vigil.project_with_key()
        shop = Shop(shop_traces(vigil, key), seed=99, t0=t0)
        counters = Counters(vigil)
        await counters.take()
        await asyncio.to_thread(shop.run, range(STEADY), (Load(), ROUTE))
        await settle(vigil)
        assert (await counters.take())[::2] == (STEADY, {})
        assert await incidents(vigil, project_id) == []
        await asyncio.to_thread(shop.traces.close)

    # a new process on the same data: latency regression needs a ready baseline (ten windows), and
    # only the saved one can be ready after two windows
    async with running(detect_settings(data_dir)) as vigil:
        shop.traces = shop_traces(vigil, key)
        counters = Counters(vigil)
        await counters.take()
        regression = Load(median_ms=400.0, sigma=0.15)
        # /invoices/{id} regresses the same way but was never seen before the restart: no baseline
        await asyncio.to_thread(
            shop.run, range(STEADY + 1, STEADY + 3), (regression, ROUTE), (regression, "/invoices/{id}")
        )
        await settle(vigil)
        assert (await counters.take())[::2] == (2, {"latency_regression": 2})
        found = await wait_for_incidents(vigil, project_id)
        await asyncio.to_thread(shop.traces.close)

    assert len(found) == 1, [i["title"] for i in found]
    incident = found[0]
    assert kinds(incident) == {"latency_regression"}, incident["title"]
    (signal,) = incident["signals"]
    assert signal["endpoint"] == ENDPOINT
    baseline = signal["evidence"]["baseline"]
    assert baseline["windows"] >= STEADY  # the steady windows of the first run
    assert baseline["metrics"]["p95_ms"]["value"] < 200 < signal["value"]


# --- request facts from log records ---------------------------------------------------------------


async def test_request_facts_from_log_records_raise_signals(tmp_path: Path) -> None:
    async with running(detect_settings(tmp_path / "vigil", from_records=True)) as vigil:
        project_id, key = await vigil.project_with_key()
        logs = OtelLogs("billing", api_key=key, http_url=vigil.receiver_url)
        rng = random.Random(5)
        t0 = epoch()
        served = 0

        def window(index: int, error_rate: float, median_ms: float) -> None:
            nonlocal served
            start = t0 + index * WINDOW_S
            for t in sorted(start + rng.random() * WINDOW_S / 2 for _ in range(30)):
                status = 500 if rng.random() < error_rate else 200
                duration = round(median_ms * math.exp(rng.gauss(0, 0.3)), 1)
                attributes = {
                    "http.request.method": "POST",
                    "http.route": "/payments",
                    "http.response.status_code": status,
                    "duration_ms": duration,
                }
                level = logging.ERROR if status >= 500 else logging.INFO
                log_at(logs, t, f"POST /payments {status} in {duration} ms", attributes, level)
                served += 1
                if rng.random() < 0.3:  # a plain log line: not a request fact
                    log_at(logs, t, "card tokenized", {"payment.provider": "acme"})
            logs.flush()

        def run(indexes: range, error_rate: float, median_ms: float) -> None:
            nonlocal served
            for index in indexes:
                window(index, error_rate, median_ms)
            marker = {"http.request.method": "GET", "http.route": MARKER, "http.response.status_code": 200}
            log_at(logs, t0 + indexes.stop * WINDOW_S, "GET /healthz 200", marker)
            served += 1
            logs.flush()

        counters = Counters(vigil, source="records")
        await counters.take()
        await asyncio.to_thread(run, range(4), 0.02, 40.0)
        await settle(vigil, RECORDS_STREAM, DETECTOR_RECORDS_CONSUMER)
        assert await counters.take() == (4, served, {})
        assert await incidents(vigil, project_id) == []

        before = served
        # payments fail half the time and take 1.5 s
        await asyncio.to_thread(run, range(4, 6), 0.5, 1500.0)
        await settle(vigil, RECORDS_STREAM, DETECTOR_RECORDS_CONSUMER)
        assert await counters.take() == (2, served - before, {"error_rate_spike": 2, "slow_endpoint": 2})
        found = await wait_for_incidents(vigil, project_id)
        await asyncio.to_thread(logs.close)

    assert len(found) == 1, [i["title"] for i in found]
    incident = found[0]
    assert incident["services"] == ["billing"]
    assert kinds(incident) == {"error_rate_spike", "slow_endpoint"}, incident["title"]
    for signal in incident["signals"]:
        assert signal["endpoint"] == "POST /payments" and signal["service"] == "billing"
    spike = next(s for s in incident["signals"] if s["kind"] == "error_rate_spike")
    assert spike["evidence"]["stats"]["status_counts"]["500"] >= 5
