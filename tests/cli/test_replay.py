"""`vigil replay`'s parts: which archived requests it takes from an incident (built by the real
detector stages), how it rebuilds them for the target, and when a replayed request reproduces its
failure; and the sending itself, against a real local service."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.doubles.service import Service
from vigil.cli.replay import (
    REPLAY_HEADER,
    Candidate,
    ReplayInputError,
    Result,
    build_request,
    collect,
    decide,
    parse_target,
    replay_all,
    target_url,
    verdict,
)
from vigil.detect.facts import MAX_BODY_BYTES, HttpRequest, RequestFact, facts_from_span
from vigil.detect.incidents import Correlator
from vigil.detect.signals import evaluate
from vigil.detect.windows import WindowConfig, Windower

T0 = 1_700_000_000


def value(v: Any) -> AnyValue:
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    if isinstance(v, int):
        return AnyValue(int_value=v)
    return AnyValue(string_value=str(v))


def server_span(i: int, *, ms: float, status: int, body: str | None = None, path: str | None = None) -> Span:
    attrs: dict[str, Any] = {
        "http.request.method": "POST",
        "http.route": "/orders/{id}/pay",
        "url.path": path or f"/orders/{i}/pay",
        "url.query": "currency=EUR",
        "url.scheme": "https",
        "server.address": "shop.internal",
        "http.response.status_code": status,
        "http.request.header.content-type": ["application/json"],
        "http.request.header.authorization": ["Bearer 8f9a0c1b2d3e4f5a6b7c8d9e"],
    }
    if body is not None:
        attrs["http.request.body"] = body
    start = (T0 + i * 0.01) * 1e9
    return Span(
        trace_id=(i + 1).to_bytes(16, "big"),
        span_id=(i + 1).to_bytes(8, "big"),
        name="POST /orders/{id}/pay",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=int(start),
        end_time_unix_nano=int(start + ms * 1e6),
        attributes=[KeyValue(key=k, value=value(v)) for k, v in attrs.items()],
    )


def incident_of(spans: list[Span]) -> dict[str, Any]:
    """The incident the detector's stages make of these spans, as the API serves it."""
    windower = Windower(WindowConfig(size_s=60, allowed_lateness_s=0))
    closed = []
    for span in spans:
        fact = facts_from_span(span, {"service.name": "shop"}, project="p1")
        assert isinstance(fact, RequestFact)
        closed += windower.add(fact)
    closed += windower.flush()
    correlator = Correlator()
    correlator.observe([s for window in closed for s in evaluate(window)], T0 + 120.0)
    [incident] = correlator.incidents
    dumped: dict[str, Any] = incident.model_dump(mode="json")
    return dumped


def test_collect_takes_error_and_slow_samples_once_each() -> None:
    # all fail; durations grow, so the first failures and the slowest requests differ
    incident = incident_of(
        [server_span(i, ms=1000 + 100 * i, status=500, body=f'{{"n": {i}}}') for i in range(20)]
    )
    kinds = {s["kind"] for s in incident["signals"]}
    assert {"error_rate_spike", "slow_endpoint"} <= kinds
    candidates, partial = collect(incident)
    assert partial == 0
    by_path = {c.request.path: c for c in candidates}
    assert set(by_path) == {f"/orders/{i}/pay" for i in (0, 1, 2, 17, 18, 19)}
    first, slowest = by_path["/orders/0/pay"], by_path["/orders/19/pay"]
    assert first.signals == ["error_rate_spike"] and first.error_status == 500 and first.latency_ms is None
    assert slowest.signals == ["slow_endpoint"] and slowest.error_status is None
    slow_signal = next(s for s in incident["signals"] if s["kind"] == "slow_endpoint")
    assert slowest.latency_ms == slow_signal["threshold"] == 1000.0
    assert first.request.body == '{"n": 0}' and "authorization" not in first.request.headers
    assert first.expected == "5xx or no answer" and slowest.expected == ">= 1000 ms"


def test_collect_merges_a_request_held_by_two_signals() -> None:
    # equal durations: the slowest three are the first three, which are also the first failures
    incident = incident_of([server_span(i, ms=1500, status=500) for i in range(10)])
    candidates, _ = collect(incident)
    assert len(candidates) == 3
    assert all(set(c.signals) == {"error_rate_spike", "slow_endpoint"} for c in candidates)
    assert candidates[0].expected == "5xx or no answer or >= 1000 ms"


def test_collect_skips_what_cannot_be_replayed() -> None:
    too_long = "x" * (MAX_BODY_BYTES + 1)
    incident = incident_of([server_span(i, ms=10, status=500, body=too_long) for i in range(10)])
    assert collect(incident) == ([], 3)
    # spans that named only their route carry no request
    for signal in incident["signals"]:
        for sample in signal["evidence"]["samples"]:
            sample["request"] = None
    assert collect(incident) == ([], 0)
    assert collect({"signals": [{"kind": "n_plus_one", "evidence": {"samples": []}}]}) == ([], 0)
    assert collect({}) == ([], 0)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host",
        "host:8080",
        "http://",
        "http://host:99999",
        "http://host/?a=1",
        "http://host/#x",
        "http://user:pw@host",
    ],
)
def test_bad_targets(url: str) -> None:
    with pytest.raises(ReplayInputError):
        parse_target(url)


def test_requests_are_rebuilt_for_the_target() -> None:
    request = HttpRequest(
        method="PATCH",
        scheme="https",
        host="shop.internal",
        port=443,
        path="/orders/42/pay",
        query="currency=EUR&x=%2F",
        headers={"content-type": "application/json", "authorization": "Bearer old", "x-tenant": "acme"},
        body='{"amount": 12}',
    )
    target = parse_target("http://127.0.0.1:8081")
    assert target_url(request, target) == "http://127.0.0.1:8081/orders/42/pay?currency=EUR&x=%2F"
    assert (
        target_url(request, parse_target("https://staging.example.com/shop/"))
        == "https://staging.example.com/shop/orders/42/pay?currency=EUR&x=%2F"
    )
    with httpx.Client() as client:
        built = build_request(client, request, target, "inc_1")
    assert (
        built.method == "PATCH" and str(built.url) == "http://127.0.0.1:8081/orders/42/pay?currency=EUR&x=%2F"
    )
    assert built.headers["content-type"] == "application/json" and built.headers["x-tenant"] == "acme"
    assert "authorization" not in built.headers  # never sent, even if an archive held one
    assert built.headers[REPLAY_HEADER] == "inc_1" and built.headers["host"] == "127.0.0.1:8081"
    assert built.content == b'{"amount": 12}'


def candidate(error_status: int | None = None, latency_ms: float | None = None) -> Candidate:
    request = HttpRequest(method="GET", path="/a")
    return Candidate(request, ["x"], error_status=error_status, latency_ms=latency_ms)


@pytest.mark.parametrize(
    ("recorded", "status", "failure", "outcome"),
    [
        (500, 500, None, "reproduced"),
        (500, 503, None, "reproduced"),
        (0, 502, None, "reproduced"),
        (500, 200, None, "not_reproduced"),
        (500, 404, None, "not_reproduced"),  # a different 4xx: the request no longer breaks it
        (500, 302, None, "not_reproduced"),
        (429, 429, None, "reproduced"),  # the status it failed with before
        (429, 200, None, "not_reproduced"),
        (500, None, "timeout", "reproduced"),
        (500, None, "dropped", "reproduced"),
        (500, None, "unreachable", "unreachable"),
    ],
)
def test_decide_for_error_signals(recorded: int, status: int | None, failure: Any, outcome: str) -> None:
    assert decide(candidate(error_status=recorded), status=status, duration_ms=5, failure=failure) == outcome


def test_decide_for_latency_signals() -> None:
    slow = candidate(latency_ms=1000)
    assert decide(slow, status=200, duration_ms=1200) == "reproduced"
    assert decide(slow, status=200, duration_ms=1000) == "reproduced"
    assert decide(slow, status=200, duration_ms=300) == "not_reproduced"
    assert decide(slow, status=500, duration_ms=300) == "not_reproduced"  # fast failures are not slow
    assert decide(slow, status=None, duration_ms=900, failure="timeout", timeout_s=2) == "reproduced"
    assert decide(slow, status=None, duration_ms=500, failure="timeout", timeout_s=0.5) == "not_reproduced"
    assert decide(slow, status=None, duration_ms=5, failure="unreachable") == "unreachable"
    both = candidate(error_status=500, latency_ms=1000)
    assert decide(both, status=500, duration_ms=10) == "reproduced"
    assert decide(both, status=200, duration_ms=1500) == "reproduced"
    assert decide(both, status=200, duration_ms=10) == "not_reproduced"


def result(outcome: Any) -> Result:
    return Result(candidate(500), "http://x/a", outcome)


def test_verdict_needs_half_of_the_requests_sent() -> None:
    assert verdict([result("reproduced")] * 2 + [result("not_reproduced")] * 2).reproduced
    no = verdict([result("reproduced")] + [result("not_reproduced")] * 2)
    assert (no.reproduced, no.attempted, no.failed) == (False, 3, 1)
    # unreachable and skipped requests are not counted
    yes = verdict([result("reproduced"), result("unreachable"), result("unreachable"), result("skipped")])
    assert (yes.reproduced, yes.attempted, yes.failed) == (True, 1, 1)
    assert not verdict([result("unreachable")]).reproduced
    assert not verdict([]).reproduced


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_replay_against_a_slow_then_fixed_service() -> None:
    slow = Candidate(
        HttpRequest(
            method="PUT", path="/items/7", query="v=2", headers={"content-type": "text/plain"}, body="hi"
        ),
        ["slow_endpoint"],
        latency_ms=200,
    )
    failing = Candidate(HttpRequest(method="GET", path="/items/8"), ["error_rate_spike"], error_status=500)
    with Service(status=200) as service:
        target = parse_target(service.base_url)
        service.delay_next(1, 0.3)
        first = replay_all([slow, failing], target, "inc_9", timeout_s=5)
        assert [(r.outcome, r.status) for r in first] == [("reproduced", 200), ("not_reproduced", 200)]
        assert first[0].duration_ms is not None and first[0].duration_ms >= 300
        got = service.requests[0]
        assert (got.method, got.path, got.query, got.body) == ("PUT", "/items/7", "v=2", b"hi")
        assert got.header("content-type") == "text/plain" and got.header(REPLAY_HEADER) == "inc_9"

        service.status = 503
        service.delay_next(1, 1.0)
        second = replay_all([failing, slow], target, "inc_9", timeout_s=0.3)
        assert [r.outcome for r in second] == ["reproduced", "not_reproduced"]  # a hang; a fast 503
        assert second[0].error is not None and "no answer in 0.3 s" in second[0].error

    unreachable = replay_all([failing], parse_target(f"http://127.0.0.1:{closed_port()}"), "inc_9", 5)
    assert unreachable[0].outcome == "unreachable" and unreachable[0].error
    assert unreachable[0].as_json()["outcome"] == "unreachable"
