"""The Elasticsearch double through its HTTP API, as an investigator searches logs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.doubles.elasticsearch_server import ElasticsearchServer

NOW = datetime.now(UTC)


def at(minutes_ago: int) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def es() -> Iterator[ElasticsearchServer]:
    with ElasticsearchServer() as server:
        server.add(
            "logs-shop",
            {
                "_id": "a",
                "@timestamp": at(1),
                "service": {"name": "shop"},
                "level": "error",
                "message": "DB pool exhausted",
            },
            {
                "_id": "b",
                "@timestamp": at(5),
                "service": {"name": "shop"},
                "level": "info",
                "message": "GET /cart 200",
            },
            {
                "_id": "c",
                "@timestamp": at(90),
                "service": {"name": "shop"},
                "level": "error",
                "message": "pool exhausted",
            },
        )
        server.add(
            "logs-billing",
            {"_id": "d", "@timestamp": at(2), "service": {"name": "billing"}, "message": "timeout"},
        )
        yield server


def search(es: ElasticsearchServer, index: str, body: dict[str, object]) -> httpx.Response:
    with httpx.Client(base_url=es.base_url) as http:
        return http.post(f"/{index}/_search", json=body)


def ids(response: httpx.Response) -> list[str]:
    return [hit["_id"] for hit in response.json()["hits"]["hits"]]


def test_query_string_with_fields_operators_and_sort(es: ElasticsearchServer) -> None:
    got = search(
        es,
        "logs-*",
        {
            "query": {
                "query_string": {"query": "service.name:shop AND (pool OR timeout) AND NOT level:info"}
            },
            "sort": [{"@timestamp": "desc"}],
        },
    )
    assert got.status_code == 200
    assert got.headers["x-elastic-product"] == "Elasticsearch"
    assert ids(got) == ["a", "c"]
    body = got.json()
    assert body["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert body["hits"]["hits"][0]["_index"] == "logs-shop"
    assert body["hits"]["hits"][0]["_source"]["message"] == "DB pool exhausted"
    assert ids(
        search(
            es,
            "logs-shop,logs-billing",
            {"query": {"query_string": {"query": '"pool exhausted"', "default_field": "message"}}},
        )
    ) == ["a", "c"]
    assert ids(
        search(
            es,
            "logs-*",
            {"query": {"query_string": {"query": "exhaust*", "default_operator": "AND"}}, "size": 1},
        )
    ) == ["a"]
    assert es.searches[0][0] == "logs-*"


def test_bool_with_a_time_range_filter(es: ElasticsearchServer) -> None:
    query = {
        "bool": {
            "must": [{"query_string": {"query": "pool"}}],
            "filter": [{"range": {"@timestamp": {"gte": "now-15m"}}}],
        }
    }
    assert ids(search(es, "logs-shop", {"query": query})) == ["a"]


def test_errors_in_elasticsearch_shape(es: ElasticsearchServer) -> None:
    missing = search(es, "nope", {"query": {"match_all": {}}})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "index_not_found_exception"
    assert search(es, "nope-*", {}).json()["hits"]["hits"] == []
    unparsable = search(es, "logs-shop", {"query": {"query_string": {"query": "(pool AND"}}})
    assert (unparsable.status_code, unparsable.json()["error"]["type"]) == (400, "query_shard_exception")
    unknown = search(es, "logs-shop", {"query": {"fuzzy_wuzzy": {}}})
    assert (unknown.status_code, unknown.json()["error"]["root_cause"][0]["type"]) == (
        400,
        "parsing_exception",
    )
