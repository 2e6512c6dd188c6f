from __future__ import annotations

from typing import Any

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from vigil.detect.facts import QueryFact, RequestFact, facts_from_record, facts_from_span
from vigil.detect.normalize import normalize_route, normalize_statement
from vigil.records import flatten

START_NS = 1_700_000_000_000_000_000
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
RESOURCE = {"service.name": "checkout", "k8s.pod.name": "checkout-1"}


def value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, dict):
        return AnyValue(
            kvlist_value=KeyValueList(values=[KeyValue(key=k, value=value(x)) for k, x in v.items()])
        )
    return AnyValue(string_value=str(v))


def span(
    kind: Span.SpanKind.ValueType,
    attrs: dict[str, Any],
    *,
    ms: float = 12.5,
    error: bool = False,
    parent: bool = True,
) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=bytes.fromhex("b7ad6b7169203331"),
        parent_span_id=bytes.fromhex("00f067aa0ba902b7") if parent else b"",
        name="span",
        kind=kind,
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + int(ms * 1e6),
        attributes=[KeyValue(key=k, value=value(v)) for k, v in attrs.items()],
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET),
    )


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/users/42/orders/7", "/users/{id}/orders/{id}"),
        ("/users/3fa85f64-5717-4562-b3fc-2c963f66afa6", "/users/{id}"),
        ("/blobs/9f86d081884c7d65", "/blobs/{id}"),
        ("/msg/AbC123dEf456gHi789", "/msg/{id}"),
        ("https://api.example.com:8443/v1/items/123?x=1#top", "/v1/items/{id}"),
        ("/api/v2/health/", "/api/v2/health"),
        ("/users/{id}", "/users/{id}"),
        ("/reports/2024-01-31", "/reports/{id}"),
        ("/", "/"),
        ("/facade/added", "/facade/added"),  # hex letters only: words, not ids
    ],
)
def test_normalize_route(path: str, route: str) -> None:
    assert normalize_route(path) == route


@pytest.mark.parametrize(
    ("sql", "shape"),
    [
        ("SELECT * FROM users WHERE id = 42", "SELECT * FROM users WHERE id = ?"),
        ("select name from t where a = 'x''y' and b = -3.5e2", "select name from t where a = ? and b = ?"),
        ("SELECT * FROM t WHERE id IN (1, 2, 3,4)", "SELECT * FROM t WHERE id IN (?)"),
        ("INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b');", "INSERT INTO t (a, b) VALUES (?)"),
        ("SELECT $1::int, col2 FROM table2 WHERE x = :name", "SELECT ?::int, col2 FROM table2 WHERE x = ?"),
        ("SELECT 1 -- trailing\n /* block */ FROM  dual", "SELECT ? FROM dual"),
        (
            "SELECT * FROM t WHERE note = '-- not a comment' AND id = 0x1F",
            "SELECT * FROM t WHERE note = ? AND id = ?",
        ),
    ],
)
def test_normalize_statement(sql: str, shape: str) -> None:
    assert normalize_statement(sql) == shape


def test_server_span_with_old_semantic_conventions() -> None:
    fact = facts_from_span(
        span(
            Span.SPAN_KIND_SERVER,
            {"http.method": "get", "http.route": "/orders/:id", "http.status_code": 503},
        ),
        RESOURCE,
        project="p1",
    )
    assert isinstance(fact, RequestFact)
    assert (fact.project, fact.service, fact.kind, fact.method) == ("p1", "checkout", "server", "GET")
    assert fact.endpoint == "GET /orders/:id"
    assert fact.status == 503 and fact.is_error
    assert fact.duration_ms == pytest.approx(12.5)
    assert fact.start_s == pytest.approx(1_700_000_000.0)
    assert fact.trace_id == TRACE.hex() and fact.span_id == "b7ad6b7169203331"
    assert fact.parent_span_id == "00f067aa0ba902b7"


def test_server_span_with_new_semantic_conventions_and_no_route() -> None:
    attrs = {"http.request.method": "POST", "url.path": "/carts/881/items", "http.response.status_code": 404}
    fact = facts_from_span(span(Span.SPAN_KIND_SERVER, attrs, parent=False), RESOURCE)
    assert isinstance(fact, RequestFact)
    assert fact.endpoint == "POST /carts/{id}/items"
    assert not fact.is_error  # a 404 served is the caller's error, not the server's
    assert fact.parent_span_id is None


def test_client_span_counts_4xx_and_status_error_as_failures() -> None:
    attrs = {
        "http.request.method": "GET",
        "url.full": "http://payments:8080/charges/77",
        "server.address": "payments",
    }
    fact = facts_from_span(span(Span.SPAN_KIND_CLIENT, {**attrs, "http.response.status_code": 429}), RESOURCE)
    assert isinstance(fact, RequestFact)
    assert fact.kind == "client" and fact.peer_service == "payments" and fact.is_error
    assert fact.endpoint == "-> payments GET /charges/{id}"
    ok = facts_from_span(span(Span.SPAN_KIND_CLIENT, {**attrs, "peer.service": "pay"}, error=True), RESOURCE)
    assert isinstance(ok, RequestFact) and ok.is_error and ok.peer_service == "pay"


def test_db_spans_become_query_facts_with_masked_statements() -> None:
    old = facts_from_span(
        span(
            Span.SPAN_KIND_CLIENT, {"db.system": "postgresql", "db.statement": "SELECT * FROM t WHERE id = 5"}
        ),
        RESOURCE,
    )
    new = facts_from_span(
        span(
            Span.SPAN_KIND_CLIENT,
            {"db.system.name": "mysql", "db.query.text": "SELECT * FROM t WHERE id = 6"},
        ),
        RESOURCE,
    )
    assert isinstance(old, QueryFact) and isinstance(new, QueryFact)
    assert old.statement == new.statement == "SELECT * FROM t WHERE id = ?"
    assert (old.db_system, new.db_system) == ("postgresql", "mysql")
    assert old.trace_id == TRACE.hex() and old.parent_span_id == "00f067aa0ba902b7"
    redis = facts_from_span(
        span(Span.SPAN_KIND_CLIENT, {"db.system": "redis", "db.operation": "GET"}), RESOURCE
    )
    assert isinstance(redis, RequestFact) and redis.kind == "db" and redis.method == "GET"


def test_rpc_and_unrelated_spans() -> None:
    grpc = facts_from_span(
        span(
            Span.SPAN_KIND_SERVER,
            {"rpc.system": "grpc", "rpc.service": "Cart", "rpc.method": "Add", "rpc.grpc.status_code": 13},
        ),
        RESOURCE,
    )
    assert isinstance(grpc, RequestFact) and grpc.endpoint == "GRPC /Cart/Add" and grpc.is_error
    assert facts_from_span(span(Span.SPAN_KIND_INTERNAL, {"http.method": "GET"}), RESOURCE) is None
    assert facts_from_span(span(Span.SPAN_KIND_SERVER, {"messaging.system": "kafka"}), RESOURCE) is None


def record(attrs: dict[str, Any], body: str = "request served", severity: int = 9) -> dict[str, Any]:
    return {
        "resourceAttributes": {"service.name": "api"},
        "severityNumber": severity,
        "severityText": "INFO",
        "body": body,
        "attributes": attrs,
        "traceId": TRACE.hex(),
        "spanId": "b7ad6b7169203331",
        "timestamp": "2023-11-14T22:13:20.25Z",
    }


def test_records_with_request_attributes() -> None:
    fact = facts_from_record(
        record(
            {
                "http.request.method": "DELETE",
                "url.path": "/items/12",
                "http.response.status_code": 500,
                "duration_ms": 31,
            }
        ),
        project="p2",
    )
    assert isinstance(fact, RequestFact)
    assert fact.endpoint == "DELETE /items/{id}" and fact.is_error and fact.duration_ms == 31.0
    assert fact.start_s == pytest.approx(1_700_000_000.25) and fact.project == "p2" and fact.service == "api"
    seconds = facts_from_record(
        record({"http.method": "GET", "http.route": "/a", "http.server.request.duration": 0.2})
    )
    assert isinstance(seconds, RequestFact) and seconds.duration_ms == pytest.approx(200.0)
    query = facts_from_record(
        record({"db.statement": "UPDATE t SET a = 1", "db.system": "postgresql"}, severity=17)
    )
    assert isinstance(query, QueryFact) and query.statement == "UPDATE t SET a = ?" and query.is_error


def test_records_that_are_not_requests() -> None:
    assert facts_from_record(record({})) is None
    assert facts_from_record(record({"http.method": "GET"})) is None  # no route
    # no status and no duration: nothing to learn from
    assert facts_from_record(record({"http.method": "GET", "http.route": "/a"})) is None
    assert facts_from_record(record({}, body='{"not": "an rrpair"}')) is None


def rrpair_log(rrpair: dict[str, Any]) -> dict[str, Any]:
    """A forwarder record as the receiver flattens it: the RRPair is a map body, the service an attribute."""
    log = LogRecord(
        time_unix_nano=START_NS,
        body=value(rrpair),
        attributes=[
            KeyValue(key="service", value=value("frontend")),
            KeyValue(key="namespace", value=value("prod")),
        ],
    )
    return flatten(log, {"service.name": "speedscale-forwarder"}, START_NS)


def test_speedscale_rrpair_records() -> None:
    inbound = rrpair_log(
        {
            "msgType": "rrpair",
            "ts": "2023-11-14T22:13:21.5Z",
            "l7protocol": "http",
            "direction": "IN",
            "duration": 1250,
            "http": {
                "request": {"method": "GET", "url": "http://frontend/api/accounts/991"},
                "response": {"statusCode": 502},
            },
        }
    )
    assert orjson.loads(inbound["body"])["l7protocol"] == "http"
    fact = facts_from_record(inbound)
    assert isinstance(fact, RequestFact)
    assert (fact.service, fact.kind, fact.endpoint) == ("frontend", "server", "GET /api/accounts/{id}")
    assert fact.duration_ms == 1250.0 and fact.status == 502 and fact.is_error
    assert fact.start_s == pytest.approx(1_700_000_001.5)

    outbound = facts_from_record(
        rrpair_log(
            {
                "l7protocol": "http",
                "direction": "OUT",
                "duration": 40,
                "http": {
                    "request": {"method": "POST", "url": "https://api.stripe.com/v1/charges"},
                    "response": {"statusCode": 200},
                },
            }
        )
    )
    assert isinstance(outbound, RequestFact)
    assert outbound.kind == "client" and outbound.peer_service == "api.stripe.com" and not outbound.is_error
    assert outbound.start_s == pytest.approx(1_700_000_000.0)  # no ts: the record's time

    query = facts_from_record(
        rrpair_log(
            {
                "l7protocol": "postgres",
                "direction": "OUT",
                "duration": 320,
                "location": "SELECT * FROM accounts WHERE id = 991",
                "mutableSignature": {"postgres:query": "SELECT * FROM accounts WHERE id = $1"},
            }
        )
    )
    assert isinstance(query, QueryFact)
    assert query.statement == "SELECT * FROM accounts WHERE id = ?" and query.db_system == "postgres"
    assert query.duration_ms == 320.0
    assert facts_from_record(rrpair_log({"l7protocol": "kafka", "duration": 3})) is None
