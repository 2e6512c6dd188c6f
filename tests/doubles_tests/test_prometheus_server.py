"""The Prometheus double through its HTTP API, as a verifier and an investigator call it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.doubles.prometheus_server import PrometheusServer

ERRORS = 'sum(rate(http_requests_total{job="shop",code=~"5.."}[5m]))'


@pytest.fixture
def prom() -> Iterator[PrometheusServer]:
    with PrometheusServer() as server:
        yield server


def test_instant_query_by_get_and_post_and_a_condition_that_clears(prom: PrometheusServer) -> None:
    prom.set(ERRORS, 4.5)
    prom.set("up == 0", [({"job": "shop", "instance": "a:9100"}, 0)])
    with httpx.Client(base_url=prom.base_url) as http:
        got = http.get("/api/v1/query", params={"query": ERRORS, "time": "1700000000"}).json()
        assert got == {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000.0, "4.5"]}]},
        }
        posted = http.post("/api/v1/query", data={"query": "up == 0"}).json()
        assert posted["data"]["result"][0]["metric"] == {"job": "shop", "instance": "a:9100"}
        assert posted["data"]["result"][0]["value"][1] == "0"

        prom.set("up == 0", [])
        assert http.post("/api/v1/query", data={"query": " up == 0 "}).json()["data"]["result"] == []
        assert http.get("/api/v1/query", params={"query": "never_exported"}).json()["data"]["result"] == []
    assert prom.queries == [ERRORS, "up == 0", "up == 0", "never_exported"]


def test_range_query_gives_one_sample_per_step(prom: PrometheusServer) -> None:
    prom.set("queue_depth", lambda t: None if t < 1060 else t - 1000)
    with httpx.Client(base_url=prom.base_url) as http:
        got = http.get(
            "/api/v1/query_range",
            params={"query": "queue_depth", "start": "1000", "end": "1120", "step": "30s"},
        ).json()
    assert got["data"]["resultType"] == "matrix"
    assert got["data"]["result"] == [
        {"metric": {}, "values": [[1060.0, "60"], [1090.0, "90"], [1120.0, "120"]]}
    ]


def test_bad_queries_get_prometheus_errors(prom: PrometheusServer) -> None:
    prom.fail("histogram_quantile(0.9, x)", "expanding series: too many samples", "execution")
    with httpx.Client(base_url=prom.base_url) as http:
        unclosed = http.get("/api/v1/query", params={"query": "sum(rate(x[5m])"})
        assert unclosed.status_code == 400
        assert unclosed.json()["errorType"] == "bad_data"
        assert "unclosed left parenthesis" in unclosed.json()["error"]
        assert http.get("/api/v1/query").status_code == 400
        backwards = http.get(
            "/api/v1/query_range", params={"query": "x", "start": "2000", "end": "1000", "step": "15"}
        )
        assert "end timestamp must not be before start time" in backwards.json()["error"]
        too_many = http.get(
            "/api/v1/query_range", params={"query": "x", "start": "0", "end": "1000000", "step": "1"}
        )
        assert too_many.status_code == 400
        assert http.get("/api/v1/query", params={"query": "x", "time": "yesterday"}).status_code == 400
        prom.fail_next(1, 503)
        down = http.get("/api/v1/query", params={"query": "up"})
        assert (down.status_code, down.json()["errorType"]) == (503, "timeout")
        failing = http.get("/api/v1/query", params={"query": "histogram_quantile(0.9, x)"})
        assert (failing.status_code, failing.json()["errorType"]) == (422, "execution")
