"""Seeded synthetic traffic for the detection tests: requests with their queries, window by window."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from vigil.detect.baselines import BaselineConfig, BaselineStore
from vigil.detect.facts import Fact, QueryFact, RequestFact
from vigil.detect.incidents import Correlator, IncidentConfig, IncidentEvent
from vigil.detect.signals import Signal, SignalConfig, evaluate
from vigil.detect.stats import ClosedWindow
from vigil.detect.windows import WindowConfig, Windower

T0 = 1_700_000_040.0  # a multiple of 60
SIZE = 60.0
PROJECT = "p1"


def request(
    t: float,
    duration: float,
    *,
    service: str = "shop",
    route: str = "/orders/{id}",
    method: str = "GET",
    status: int = 200,
    trace: str | None = None,
    kind: Literal["server", "client", "db"] = "server",
    peer: str | None = None,
) -> RequestFact:
    return RequestFact(
        project=PROJECT,
        service=service,
        kind=kind,
        method=method,
        route=route,
        status=status,
        is_error=status >= 500,
        duration_ms=duration,
        start_s=t,
        trace_id=trace,
        span_id=None,
        peer_service=peer,
    )


def query(
    t: float, duration: float, statement: str, *, service: str = "shop", trace: str | None = None
) -> QueryFact:
    return QueryFact(
        project=PROJECT,
        service=service,
        db_system="postgresql",
        statement=statement,
        duration_ms=duration,
        start_s=t,
        trace_id=trace,
    )


@dataclass
class Shape:
    """How one endpoint behaves in a window."""

    route: str = "/orders/{id}"
    service: str = "shop"
    requests: int = 100
    median_ms: float = 80.0
    sigma: float = 0.25
    error_rate: float = 0.002
    queries: list[tuple[str, float, int]] = field(
        default_factory=lambda: [
            ("SELECT * FROM orders WHERE id = ?", 5.0, 1),
            ("SELECT * FROM items WHERE order_id = ?", 4.0, 3),
        ]
    )  # statement, median ms, executions per request
    query_factor: float = 1.0  # multiplies query durations


def window_facts(rng: random.Random, start: float, shapes: list[Shape]) -> list[Fact]:
    facts: list[Fact] = []
    for shape in shapes:
        for _ in range(shape.requests):
            t = start + rng.random() * (SIZE - 2)
            trace = f"{rng.getrandbits(128):032x}"
            status = 500 if rng.random() < shape.error_rate else 200
            spent = 0.0
            for statement, median, times in shape.queries:
                for _ in range(times):
                    d = median * shape.query_factor * math.exp(rng.gauss(0, 0.3))
                    spent += d
                    facts.append(query(t + 0.001, d, statement, service=shape.service, trace=trace))
            d = shape.median_ms * math.exp(rng.gauss(0, shape.sigma)) + spent
            facts.append(request(t, d, service=shape.service, route=shape.route, status=status, trace=trace))
    facts.sort(key=lambda f: f.start_s)
    return facts


@dataclass
class Run:
    windows: list[ClosedWindow] = field(default_factory=list)
    signals: list[list[Signal]] = field(default_factory=list)  # per closed window
    events: list[IncidentEvent] = field(default_factory=list)

    def kinds(self, index: int) -> set[str]:
        return {s.kind.value for s in self.signals[index]}

    def all_signals(self) -> list[Signal]:
        return [s for batch in self.signals for s in batch]


class Pipeline:
    """Windower -> evaluate (with baselines) -> correlator, as the service will wire them."""

    def __init__(
        self,
        signal_config: SignalConfig | None = None,
        baseline_config: BaselineConfig | None = None,
        incident_config: IncidentConfig | None = None,
        seed: int = 7,
    ) -> None:
        self.rng = random.Random(seed)
        self.windower = Windower(WindowConfig(size_s=SIZE, allowed_lateness_s=5.0))
        self.store = BaselineStore(baseline_config)
        self.correlator = Correlator(incident_config)
        self.signal_config = signal_config
        self.run = Run()
        self.next_window = 0

    def feed(self, facts: list[Fact]) -> None:
        for fact in facts:
            for closed in self.windower.add(fact):
                self._closed(closed)

    def _closed(self, closed: ClosedWindow) -> None:
        signals = evaluate(closed, self.store, self.signal_config)
        self.run.windows.append(closed)
        self.run.signals.append(signals)
        self.run.events.extend(self.correlator.observe(signals, closed.window_end + 5.0))

    def windows(self, count: int, shapes: Callable[[int], list[Shape]] | list[Shape]) -> Run:
        for _ in range(count):
            i = self.next_window
            self.feed(window_facts(self.rng, T0 + i * SIZE, shapes(i) if callable(shapes) else shapes))
            self.next_window += 1
        return self.run

    def finish(self) -> Run:
        for closed in self.windower.flush():
            self._closed(closed)
        return self.run
