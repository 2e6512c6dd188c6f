from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.detect.traffic import T0, query, request
from vigil.detect.facts import Fact
from vigil.detect.stats import NO_ENDPOINT, OTHER, ClosedWindow
from vigil.detect.windows import WindowConfig, Windower

N_PLUS_ONE = "SELECT * FROM items WHERE id = ?"


def feed(windower: Windower, facts: Sequence[Fact]) -> list[ClosedWindow]:
    out: list[ClosedWindow] = []
    for fact in facts:
        out.extend(windower.add(fact))
    return out


def test_window_closes_only_after_the_lateness_allowance() -> None:
    w = Windower(WindowConfig(size_s=60, allowed_lateness_s=10))
    facts = [
        request(T0 + i * 0.5, 10.0 + i, status=500 if i % 10 == 0 else 200, trace=f"t{i}") for i in range(100)
    ]
    assert feed(w, facts) == []
    assert w.add(request(T0 + 65, 5.0)) == []  # next window, but within the allowance
    assert w.add(request(T0 + 30, 5.0)) == []  # out of order, still counted
    closed = w.add(request(T0 + 70, 5.0))
    assert len(closed) == 1
    window = closed[0]
    assert (window.window_start, window.window_end) == (T0, T0 + 60)
    (stats,) = window.endpoints
    assert stats.endpoint == "GET /orders/{id}" and stats.kind == "server"
    assert stats.count == 101 and stats.errors == 10
    assert stats.error_rate == pytest.approx(10 / 101)
    assert stats.status_counts == {200: 91, 500: 10}
    durations = sorted([10.0 + i for i in range(100)] + [5.0])
    assert stats.p50_ms == pytest.approx(durations[50], rel=0.02)
    assert stats.p95_ms == pytest.approx(durations[95], rel=0.02)
    assert stats.p99_ms == pytest.approx(durations[99], rel=0.02)
    assert stats.max_ms == 109.0
    assert [f.duration_ms for f in stats.slow_samples] == [109.0, 108.0, 107.0]
    assert len(stats.error_samples) == 3 and all(f.is_error for f in stats.error_samples)
    assert stats.sample_trace_ids[:3] == ["t99", "t98", "t97"] and len(stats.sample_trace_ids) == 5


def test_late_facts_count_in_the_window_open_when_they_arrive_and_are_reported() -> None:
    w = Windower(WindowConfig(size_s=60, allowed_lateness_s=10))
    feed(w, [request(T0 + 1, 5.0), request(T0 + 75, 5.0)])  # closes [T0, T0+60)
    assert w.add(request(T0 + 59, 7.0)) == []  # its window is closed: it joins [T0+60, T0+120)
    assert w.add(request(T0 + 2, 9.0)) == []
    assert w.add(request(T0 + 2, 9.0)) == []  # a duplicate counts too
    assert w.late_facts == 3
    closed = w.add(request(T0 + 135, 5.0))
    assert [c.window_start for c in closed] == [T0 + 60]
    assert closed[0].late_facts == 3 and closed[0].endpoints[0].count == 4
    assert closed[0].endpoints[0].max_ms == 9.0
    after = w.add(request(T0 + 300, 5.0))  # a gap: no window for the minutes without facts
    assert [(c.window_start, c.late_facts) for c in after] == [(T0 + 120, 0)]  # reported once


def test_streams_have_their_own_watermarks() -> None:
    w = Windower(WindowConfig(size_s=60, allowed_lateness_s=10))
    feed(w, [request(T0 + 1, 5.0, service="slow-clock"), request(T0 + 1, 5.0, service="other")])
    closed = w.add(request(T0 + 500, 5.0, service="other"))
    assert [c.service for c in closed] == ["other"]
    assert w.add(request(T0 + 2, 5.0, service="slow-clock")) == []
    assert w.late_facts == 0
    (rest,) = [c for c in w.flush() if c.service == "slow-clock"]
    assert rest.endpoints[0].count == 2


def test_advance_closes_quiet_streams_and_flush_closes_everything() -> None:
    w = Windower(WindowConfig(size_s=60, allowed_lateness_s=10, idle_grace_s=30))
    feed(w, [request(T0 + 1, 5.0), request(T0 + 61, 5.0)])
    assert w.advance(T0 + 60 + 39) == []
    assert [c.window_start for c in w.advance(T0 + 60 + 40)] == [T0]
    assert w.open_windows == 1
    assert [c.window_start for c in w.flush()] == [T0 + 60]
    assert w.open_windows == 0


def test_queries_are_attributed_to_the_request_of_their_trace() -> None:
    w = Windower(WindowConfig(size_s=60, allowed_lateness_s=10))
    facts: list[Fact] = []
    for i in range(4):
        trace = f"trace{i}"
        repeats = 25 if i == 2 else 2
        # a request's queries end (and are exported) before the request itself
        facts += [query(T0 + i + 0.01 * k, 3.0 + k, N_PLUS_ONE, trace=trace) for k in range(repeats)]
        facts.append(
            query(T0 + i, 400.0 if i == 3 else 2.0, "SELECT * FROM orders WHERE id = ?", trace=trace)
        )
        facts.append(request(T0 + i, 50.0, route="/orders/{id}", trace=trace))
    facts.append(query(T0 + 5, 1.0, "SELECT ?", trace="no-request"))
    facts.append(query(T0 + 6, 1.0, "SELECT ?"))  # untraced
    feed(w, facts)
    (window,) = w.flush()
    by_endpoint = {s.endpoint: s for s in window.endpoints}
    orders = by_endpoint["GET /orders/{id}"]
    assert orders.count == 4 and orders.queries_total == 2 + 2 + 25 + 2 + 4
    assert orders.max_identical_per_trace == 25 and orders.max_queries_per_trace == 26
    stats = {q.statement: q for q in orders.queries}
    loop = stats[N_PLUS_ONE]
    assert loop.count == 31 and loop.traces == 4 and loop.max_per_trace == 25
    assert loop.max_per_trace_trace_id == "trace2"
    slow = stats["SELECT * FROM orders WHERE id = ?"]
    assert slow.max_ms == 400.0 and slow.slow_trace_ids[0] == "trace3"
    orphan = by_endpoint[NO_ENDPOINT]
    assert orphan.kind == "queries" and orphan.count == 0
    assert orphan.queries[0].count == 2 and orphan.queries[0].traces == 1


def test_queries_in_the_next_window_still_find_their_request() -> None:
    w = Windower(WindowConfig(size_s=60, allowed_lateness_s=5))
    feed(
        w,
        [
            query(T0 + 1, 3.0, "SELECT ?"),  # this service reports queries, so routes are kept
            request(T0 + 59.9, 900.0, trace="x"),
            query(T0 + 61, 3.0, N_PLUS_ONE, trace="x"),
            request(T0 + 70, 1.0),
        ],
    )
    closed = w.flush()
    second = closed[-1]
    assert {s.endpoint for s in second.endpoints} == {"GET /orders/{id}"}
    assert second.endpoints[0].queries_total == 1


def test_routes_are_not_kept_for_services_without_queries() -> None:
    w = Windower()
    feed(w, [request(T0 + 1, 5.0, trace="a"), request(T0 + 2, 5.0, trace="b")])
    (stream,) = w._streams.values()
    assert [len(win.routes) for win in stream.windows.values()] == [0]
    feed(w, [query(T0 + 3, 1.0, "SELECT ?", trace="c"), request(T0 + 4, 5.0, trace="c")])
    assert [len(win.routes) for win in stream.windows.values()] == [1]


def test_memory_caps_pool_endpoints_statements_and_traces() -> None:
    config = WindowConfig(max_endpoints=3, max_statements=2, max_trace_entries=5)
    w = Windower(config)
    feed(w, [request(T0 + 1, 1.0, route=f"/r{i}") for i in range(10)])
    feed(w, [query(T0 + 2, 1.0, f"SELECT c{i} FROM t", trace=f"t{i}") for i in range(10)])
    (window,) = w.flush()
    names = {s.endpoint: s for s in window.endpoints}
    assert names[OTHER].count == 7 and len([n for n in names if n.startswith("GET")]) == 3
    statements = {q.statement: q.count for q in names[NO_ENDPOINT].queries}
    assert statements == {"SELECT c0 FROM t": 1, "SELECT c1 FROM t": 1, OTHER: 8}
    assert window.trace_overflow == 5
