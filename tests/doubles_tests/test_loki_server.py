"""The Loki double through its HTTP API, as an investigator calls it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.doubles.loki_server import LokiServer

T0 = 1_700_000_000


@pytest.fixture
def loki() -> Iterator[LokiServer]:
    with LokiServer() as server:
        server.push({"app": "shop", "level": "error"}, "pool exhausted", "pool exhausted again", at=T0 + 10)
        server.push({"app": "shop", "level": "info"}, "GET /cart 200", at=T0 + 20)
        server.push({"app": "billing", "level": "error"}, "pool exhausted", at=T0 + 30)
        yield server


def query_range(loki: LokiServer, query: str, **params: str) -> httpx.Response:
    base = {"query": query, "start": str(T0), "end": str(T0 + 60)}
    with httpx.Client(base_url=loki.base_url) as http:
        return http.get("/loki/api/v1/query_range", params=base | params)


def test_selector_and_line_filter_give_streams_newest_first(loki: LokiServer) -> None:
    got = query_range(loki, '{app="shop"} |= "pool"')
    assert got.status_code == 200
    data = got.json()["data"]
    assert data["resultType"] == "streams"
    assert data["result"] == [
        {
            "stream": {"app": "shop", "level": "error"},
            "values": [
                [str((T0 + 10) * 10**9 + 1), "pool exhausted again"],
                [str((T0 + 10) * 10**9), "pool exhausted"],
            ],
        }
    ]
    regex = query_range(loki, '{level=~"err.*", app!="shop"} !~ `again$`').json()["data"]["result"]
    assert [s["stream"]["app"] for s in regex] == ["billing"]
    limited = query_range(loki, '{level="error"}', limit="1", direction="forward").json()["data"]["result"]
    assert limited[0]["values"][0][1] == "pool exhausted"
    assert loki.queries[0] == '{app="shop"} |= "pool"'


def test_times_in_nanoseconds_and_rfc3339_and_the_instant_endpoint(loki: LokiServer) -> None:
    window = {"start": str((T0 + 15) * 10**9), "end": "2023-11-14T22:13:45Z"}
    lines = [
        v[1]
        for s in query_range(loki, '{app="shop"}', **window).json()["data"]["result"]
        for v in s["values"]
    ]
    assert lines == ["GET /cart 200"]
    with httpx.Client(base_url=loki.base_url) as http:
        instant = http.post("/loki/api/v1/query", data={"query": '{app="billing"}', "time": str(T0 + 60)})
    assert instant.json()["data"]["result"][0]["values"][0][1] == "pool exhausted"


def test_refusals_are_plain_text_400s(loki: LokiServer) -> None:
    for bad in (
        '{app="shop"',
        '{app=~".*"}',
        'sum(count_over_time({app="shop"}[5m]))',
        '{app="shop"} | json',
    ):
        refused = query_range(loki, bad)
        assert refused.status_code == 400, bad
        assert refused.headers["content-type"].startswith("text/plain")
    assert query_range(loki, '{app="shop"}', start=str(T0 + 60), end=str(T0)).status_code == 400
    with LokiServer(instant_log_queries=False) as loki3, httpx.Client(base_url=loki3.base_url) as http:
        assert http.get("/loki/api/v1/query", params={"query": '{app="shop"}'}).status_code == 400
