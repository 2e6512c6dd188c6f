"""Per-service tumbling windows over request and query facts, closed by an event-time watermark.

Facts are grouped by (project, service) and by the window their start time falls in. Each stream
has its own watermark, the latest event time it has seen minus `allowed_lateness_s`; a window closes
when the watermark passes its end, so facts up to that much out of order count in their own window.
Time is taken as the stream has it, and nothing is dropped for it: a fact whose window has already
closed is late and counts in the oldest window still open (the one it arrived in), and how many
were late is reported on that window (`late_facts`); facts with the same time simply count
together, and a gap leaves no window behind (windows exist only where facts fell).
`advance(now)` closes windows of streams that went quiet.

A closed window yields one `WindowStats` per endpoint. Queries are attributed to the endpoint of the
server request of their trace (from this window or the one before, because a request's queries can
start in the next window); queries with no such request go to the pseudo-endpoint `*`. The trace ->
endpoint map is only kept once a stream has reported a query, so services without queries (or whose
queries come from elsewhere) do not pay for it.

Memory is bounded per open window: endpoints and statements beyond their caps are pooled under
`(other)`, and per-trace query counters beyond `max_trace_entries` stop being kept per trace.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.detect.facts import Fact, QueryFact, RequestFact
from vigil.detect.sketch import DDSketch
from vigil.detect.stats import NO_ENDPOINT, OTHER, ClosedWindow, QueryStats, WindowStats

__all__ = ["NO_ENDPOINT", "OTHER", "ClosedWindow", "QueryStats", "WindowConfig", "WindowStats", "Windower"]


class WindowConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    size_s: float = Field(60.0, gt=0)
    allowed_lateness_s: float = Field(10.0, ge=0)
    idle_grace_s: float = Field(60.0, ge=0)  # extra wait before `advance(now)` closes a quiet stream's window
    sketch_alpha: float = Field(0.01, gt=0, lt=1)
    sketch_max_buckets: int = Field(1024, ge=16)
    max_endpoints: int = Field(2000, ge=1)  # per stream and window
    max_statements: int = Field(500, ge=1)  # per stream and window
    max_trace_entries: int = Field(50_000, ge=0)  # (trace, statement) counters per stream and window
    queries_per_endpoint: int = Field(10, ge=1)  # query stats reported per endpoint
    samples: int = Field(3, ge=0)  # slowest and first failing facts kept per endpoint
    trace_ids: int = Field(5, ge=0)


class _Endpoint:
    __slots__ = ("count", "errors", "errs", "kind", "name", "sketch", "slow", "statuses")

    def __init__(self, name: str, kind: Literal["server", "client", "db"], config: WindowConfig) -> None:
        self.name = name  # the one copy of the name that routes share
        self.kind = kind
        self.count = 0
        self.errors = 0
        self.sketch = DDSketch(config.sketch_alpha, config.sketch_max_buckets)
        self.statuses: dict[int, int] = {}
        self.slow: list[tuple[float, int, RequestFact]] = []  # min-heap of the slowest facts
        self.errs: list[RequestFact] = []


class _Window:
    """One stream's open window: endpoint accumulators and query counters."""

    __slots__ = (
        "endpoints",
        "overflow",
        "per_trace",
        "routes",
        "start",
        "stmt_index",
        "stmts",
        "systems",
        "untraced",
    )

    def __init__(self, start: float) -> None:
        self.start = start
        self.endpoints: dict[str, _Endpoint] = {}
        # hash of a trace id -> endpoint of its server request; an int key is a third of a hex string
        self.routes: dict[int, str] = {}
        self.stmts: list[str] = []
        self.systems: list[str] = []
        self.stmt_index: dict[str, int] = {}
        self.per_trace: dict[tuple[str, int], list[float]] = {}
        self.untraced: dict[int, list[float]] = {}
        self.overflow = 0


class _Stream:
    __slots__ = ("closed_until", "has_queries", "late", "max_seen", "prev_routes", "windows")

    def __init__(self) -> None:
        self.max_seen = -math.inf
        self.closed_until = -math.inf
        self.windows: dict[float, _Window] = {}
        self.late = 0
        self.prev_routes: dict[int, str] = {}
        self.has_queries = False  # routes are only kept for streams that report queries


def _bump(row: list[float], fact: QueryFact) -> None:
    # row: count, errors, total ms, max ms (-1 until a duration is seen)
    row[0] += 1
    row[1] += fact.is_error
    if fact.duration_ms is not None:
        row[2] += fact.duration_ms
        row[3] = max(row[3], fact.duration_ms)


class Windower:
    """Turns facts into closed per-endpoint window statistics; see the module docstring."""

    def __init__(self, config: WindowConfig | None = None) -> None:
        self.config = config or WindowConfig()
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._seq = itertools.count()
        self.late_facts = 0  # total over the windower's life

    @property
    def open_windows(self) -> int:
        return sum(len(s.windows) for s in self._streams.values())

    def add(self, fact: Fact) -> list[ClosedWindow]:
        """Count one fact; return the windows its event time closed (usually none)."""
        c = self.config
        key = (fact.project, fact.service)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
        start = math.floor(fact.start_s / c.size_s) * c.size_s
        closed = max(stream.closed_until, stream.max_seen - c.allowed_lateness_s)
        if start + c.size_s <= closed:
            # late: its own window is gone, so it counts in the one open as it arrives
            start = math.floor(closed / c.size_s) * c.size_s
            stream.late += 1
            self.late_facts += 1
        window = stream.windows.get(start)
        if window is None:
            window = stream.windows[start] = _Window(start)
        if isinstance(fact, RequestFact):
            self._add_request(window, fact, stream.has_queries)
        else:
            stream.has_queries = True
            self._add_query(window, fact)
        if fact.start_s <= stream.max_seen:
            return []
        stream.max_seen = fact.start_s
        return self._close(key, stream, stream.max_seen - c.allowed_lateness_s)

    def advance(self, now: float) -> list[ClosedWindow]:
        """Close the windows that even a quiet stream must have finished by `now` (epoch seconds)."""
        watermark = now - self.config.allowed_lateness_s - self.config.idle_grace_s
        out: list[ClosedWindow] = []
        for key, stream in self._streams.items():
            out.extend(self._close(key, stream, watermark))
            if not stream.windows:
                stream.prev_routes = {}  # a quiet stream has no queries left to attribute
        return out

    def flush(self) -> list[ClosedWindow]:
        """Close every open window (at shutdown or at the end of a replay)."""
        return self.advance(math.inf)

    def _add_request(self, window: _Window, fact: RequestFact, keep_route: bool) -> None:
        c = self.config
        name = fact.endpoint
        acc = window.endpoints.get(name)
        if acc is None:
            if len(window.endpoints) >= c.max_endpoints:
                name = OTHER
                acc = window.endpoints.get(name)
            if acc is None:
                acc = window.endpoints[name] = _Endpoint(name, fact.kind, c)
        acc.count += 1
        acc.statuses[fact.status] = acc.statuses.get(fact.status, 0) + 1
        if fact.is_error:
            acc.errors += 1
            if len(acc.errs) < c.samples:
                acc.errs.append(fact)
        if fact.duration_ms is not None:
            acc.sketch.add(fact.duration_ms)
            if c.samples:
                item = (fact.duration_ms, next(self._seq), fact)
                if len(acc.slow) < c.samples:
                    heapq.heappush(acc.slow, item)
                elif item[0] > acc.slow[0][0]:
                    heapq.heapreplace(acc.slow, item)
        trace = fact.trace_id
        if (
            keep_route
            and fact.kind == "server"
            and trace
            and hash(trace) not in window.routes
            and len(window.routes) < c.max_trace_entries
        ):
            window.routes[hash(trace)] = acc.name

    def _add_query(self, window: _Window, fact: QueryFact) -> None:
        c = self.config
        index = window.stmt_index.get(fact.statement)
        if index is None:
            text, system = (fact.statement, fact.db_system)
            if len(window.stmts) >= c.max_statements:
                text, system = OTHER, "mixed"
            index = window.stmt_index.get(text)
            if index is None:
                index = window.stmt_index[text] = len(window.stmts)
                window.stmts.append(text)
                window.systems.append(system)
        if fact.trace_id:
            key = (fact.trace_id, index)
            row = window.per_trace.get(key)
            if row is None and len(window.per_trace) < c.max_trace_entries:
                row = window.per_trace[key] = [0, 0, 0.0, -1.0]
            if row is not None:
                _bump(row, fact)
                return
            window.overflow += 1
        row = window.untraced.get(index)
        if row is None:
            row = window.untraced[index] = [0, 0, 0.0, -1.0]
        _bump(row, fact)

    def _close(self, key: tuple[str, str], stream: _Stream, watermark: float) -> list[ClosedWindow]:
        size = self.config.size_s
        ready = sorted(start for start in stream.windows if start + size <= watermark)
        out: list[ClosedWindow] = []
        for start in ready:
            window = stream.windows.pop(start)
            out.append(self._stats(key, stream, window))
            stream.prev_routes = window.routes
            stream.closed_until = max(stream.closed_until, start + size)
            stream.late = 0
        return out

    def _stats(self, key: tuple[str, str], stream: _Stream, window: _Window) -> ClosedWindow:
        c = self.config
        routes = {**stream.prev_routes, **window.routes}
        stats = _endpoint_stats(key, window, routes, c)
        return ClosedWindow(
            project=key[0],
            service=key[1],
            window_start=window.start,
            window_end=window.start + c.size_s,
            endpoints=stats,
            late_facts=stream.late,
            trace_overflow=window.overflow,
        )


class _QueryAgg:
    __slots__ = ("count", "errors", "max_ms", "max_per_trace", "max_trace", "slow", "total_ms", "traces")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total_ms = 0.0
        self.max_ms = -1.0
        self.traces = 0
        self.max_per_trace = 0
        self.max_trace: str | None = None
        self.slow: list[tuple[float, str]] = []

    def add(self, row: list[float], trace: str | None, keep: int) -> None:
        self.count += int(row[0])
        self.errors += int(row[1])
        self.total_ms += row[2]
        self.max_ms = max(self.max_ms, row[3])
        if trace is None:
            return
        self.traces += 1
        if row[0] > self.max_per_trace:
            self.max_per_trace, self.max_trace = int(row[0]), trace
        if row[3] >= 0 and keep:
            if len(self.slow) < keep:
                heapq.heappush(self.slow, (row[3], trace))
            elif row[3] > self.slow[0][0]:
                heapq.heapreplace(self.slow, (row[3], trace))

    def stats(self, statement: str, system: str) -> QueryStats:
        return QueryStats(
            statement=statement,
            db_system=system,
            count=self.count,
            errors=self.errors,
            traces=self.traces,
            max_per_trace=self.max_per_trace,
            max_per_trace_trace_id=self.max_trace,
            total_ms=self.total_ms,
            max_ms=self.max_ms if self.max_ms >= 0 else None,
            slow_trace_ids=[t for _, t in sorted(self.slow, reverse=True)],
        )


def _top_queries(queries: list[QueryStats], k: int) -> list[QueryStats]:
    """The k most frequent, the k most repeated within a trace and the k slowest, without repeats."""
    keep: dict[str, QueryStats] = {}
    for order in (
        lambda q: q.count,
        lambda q: q.max_per_trace,
        lambda q: q.max_ms or 0.0,
    ):
        for q in sorted(queries, key=order, reverse=True)[:k]:
            keep[q.statement] = q
    return sorted(keep.values(), key=lambda q: (q.max_per_trace, q.max_ms or 0.0, q.count), reverse=True)


def _endpoint_stats(
    key: tuple[str, str], window: _Window, routes: dict[int, str], c: WindowConfig
) -> list[WindowStats]:
    aggs: dict[tuple[str, int], _QueryAgg] = {}
    trace_totals: dict[str, int] = defaultdict(int)
    for (trace, index), row in window.per_trace.items():
        endpoint = routes.get(hash(trace), NO_ENDPOINT)
        agg = aggs.get((endpoint, index))
        if agg is None:
            agg = aggs[(endpoint, index)] = _QueryAgg()
        agg.add(row, trace, c.trace_ids)
        trace_totals[trace] += int(row[0])
    for index, row in window.untraced.items():
        agg = aggs.get((NO_ENDPOINT, index))
        if agg is None:
            agg = aggs[(NO_ENDPOINT, index)] = _QueryAgg()
        agg.add(row, None, 0)
    most_per_trace: dict[str, int] = defaultdict(int)
    for trace, total in trace_totals.items():
        endpoint = routes.get(hash(trace), NO_ENDPOINT)
        most_per_trace[endpoint] = max(most_per_trace[endpoint], total)
    by_endpoint: dict[str, list[QueryStats]] = defaultdict(list)
    for (endpoint, index), agg in aggs.items():
        by_endpoint[endpoint].append(agg.stats(window.stmts[index], window.systems[index]))

    out: list[WindowStats] = []
    names = list(window.endpoints) + sorted(e for e in by_endpoint if e not in window.endpoints)
    for name in names:
        acc = window.endpoints.get(name)
        queries = by_endpoint.get(name, [])
        kind: Literal["server", "client", "db", "queries"] = "queries" if name == NO_ENDPOINT else "server"
        stats = WindowStats(
            project=key[0],
            service=key[1],
            endpoint=name,
            kind=acc.kind if acc is not None else kind,
            window_start=window.start,
            window_end=window.start + c.size_s,
            queries_total=sum(q.count for q in queries),
            max_identical_per_trace=max((q.max_per_trace for q in queries), default=0),
            max_queries_per_trace=most_per_trace.get(name, 0),
            queries=_top_queries(queries, c.queries_per_endpoint),
        )
        if acc is not None:
            _fill_requests(stats, acc, c)
        out.append(stats)
    return out


def _fill_requests(stats: WindowStats, acc: _Endpoint, c: WindowConfig) -> None:
    sketch = acc.sketch
    stats.count = acc.count
    stats.errors = acc.errors
    stats.status_counts = dict(acc.statuses)
    if sketch.count:
        stats.p50_ms = sketch.quantile(0.5)
        stats.p95_ms = sketch.quantile(0.95)
        stats.p99_ms = sketch.quantile(0.99)
        stats.max_ms = sketch.max
    stats.slow_samples = [f for _, _, f in sorted(acc.slow, key=lambda item: item[0], reverse=True)]
    stats.error_samples = list(acc.errs)
    traces: list[str] = []
    for fact in stats.slow_samples + stats.error_samples:
        if fact.trace_id and fact.trace_id not in traces:
            traces.append(fact.trace_id)
    stats.sample_trace_ids = traces[: c.trace_ids]
