from __future__ import annotations

from typing import Any

import orjson
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from vigil.detect.facts import (
    MAX_BODY_BYTES,
    HttpRequest,
    QueryFact,
    RequestFact,
    facts_from_record,
    facts_from_span,
    is_safe_header,
)
from vigil.detect.incidents import Correlator
from vigil.detect.normalize import normalize_route, normalize_statement
from vigil.detect.signals import SignalKind, evaluate
from vigil.detect.windows import WindowConfig, Windower
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
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
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
    assert fact.request is None  # a route is no request that could be sent again


def test_server_span_with_new_semantic_conventions_and_no_route() -> None:
    attrs = {"http.request.method": "POST", "url.path": "/carts/881/items", "http.response.status_code": 404}
    fact = facts_from_span(span(Span.SPAN_KIND_SERVER, attrs, parent=False), RESOURCE)
    assert isinstance(fact, RequestFact)
    assert fact.endpoint == "POST /carts/{id}/items"
    assert not fact.is_error  # a 404 served is the caller's error, not the server's
    assert fact.parent_span_id is None
    assert fact.request == HttpRequest(method="POST", path="/carts/881/items")


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
    assert fact.request is None  # only served requests are kept for replay
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


# --- HTTP request details ---------------------------------------------------------------------

CAPTURED = {
    "http.request.method": "post",
    "http.route": "/orders/{id}/pay",
    "url.path": "/orders/42/pay",
    "url.query": "currency=EUR&api_key=sk_live_abcdefghijklmnop",
    "url.scheme": "https",
    "server.address": "shop.internal",
    "server.port": 8443,
    "http.response.status_code": 500,
    "http.request.header.content-type": ["application/json"],
    "http.request.header.x-request-id": ["r-1"],
    "http.request.header.accept": ["application/json", "text/plain"],
    "http.request.header.authorization": ["Bearer abc.def.ghi"],
    "http.request.header.cookie": ["session=s3cret"],
    "http.request.header.x-api-key": ["vgl_key"],
    "http.request.header.x-forwarded-for": ["203.0.113.9"],
    "http.request.header.content-length": ["42"],
    "http.request.header.x-debug": ["Bearer 8f9a0c1b2d3e4f5a6b7c8d9e"],
    "http.request.body": '{"amount": 12, "password": "hunter2", "email": "ann@example.com"}',
}


def test_server_spans_carry_the_request_without_secrets() -> None:
    fact = facts_from_span(span(Span.SPAN_KIND_SERVER, CAPTURED), RESOURCE)
    assert isinstance(fact, RequestFact) and fact.endpoint == "POST /orders/{id}/pay"
    request = fact.request
    assert request is not None
    assert (request.method, request.scheme, request.host, request.port, request.path) == (
        "POST",
        "https",
        "shop.internal",
        8443,
        "/orders/42/pay",
    )
    assert request.query is not None and request.query.startswith("currency=EUR&api_key=")
    assert "sk_live_abcdefghijklmnop" not in request.query  # redacted
    assert request.headers == {
        "content-type": "application/json",
        "x-request-id": "r-1",
        "accept": "application/json, text/plain",
        "x-debug": "Bearer [REDACTED:bearer_token]",
    }
    assert request.body is not None and "hunter2" not in request.body
    assert '"amount": 12' in request.body and "ann@example.com" in request.body  # not a secret
    assert not request.body_truncated
    assert request.url.startswith("https://shop.internal:8443/orders/42/pay?currency=EUR")
    # what is stored round-trips
    assert RequestFact.model_validate_json(fact.model_dump_json()) == fact


def test_old_semantic_conventions_and_full_urls() -> None:
    old = facts_from_span(
        span(
            Span.SPAN_KIND_SERVER,
            {
                "http.method": "GET",
                "http.target": "/search?q=shoes&page=2",
                "http.scheme": "http",
                "http.host": "shop:8080",
                "http.status_code": 200,
            },
        ),
        RESOURCE,
    )
    assert isinstance(old, RequestFact) and old.request is not None
    assert (old.request.host, old.request.port, old.request.target) == (
        "shop",
        8080,
        "/search?q=shoes&page=2",
    )
    assert old.endpoint == "GET /search"
    full = facts_from_span(
        span(
            Span.SPAN_KIND_SERVER,
            {"http.method": "DELETE", "http.url": "https://api.example.com/v1/items/7?force=1"},
        ),
        RESOURCE,
    )
    assert isinstance(full, RequestFact) and full.request is not None
    assert full.request.url == "https://api.example.com/v1/items/7?force=1"
    grpc = facts_from_span(
        span(
            Span.SPAN_KIND_SERVER,
            {"rpc.system": "grpc", "rpc.service": "Cart", "rpc.method": "Add", "url.path": "/Cart/Add"},
        ),
        RESOURCE,
    )
    assert isinstance(grpc, RequestFact) and grpc.request is None  # not replayable as HTTP


def test_request_bodies_are_bounded() -> None:
    long_body = "x" * (MAX_BODY_BYTES + 100)
    fact = facts_from_span(
        span(
            Span.SPAN_KIND_SERVER, {"http.method": "PUT", "url.path": "/blob", "http.request.body": long_body}
        ),
        RESOURCE,
    )
    assert isinstance(fact, RequestFact) and fact.request is not None
    assert fact.request.body == "x" * MAX_BODY_BYTES and fact.request.body_truncated
    # cut on a character boundary
    wide = "é" * MAX_BODY_BYTES
    cut = facts_from_span(
        span(Span.SPAN_KIND_SERVER, {"http.method": "PUT", "url.path": "/blob", "http.request.body": wide}),
        RESOURCE,
    )
    assert isinstance(cut, RequestFact) and cut.request is not None and cut.request.body is not None
    assert cut.request.body == "é" * (MAX_BODY_BYTES // 2) and cut.request.body_truncated


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Content-Type", True),
        ("x-request-id", True),
        ("User-Agent", True),
        ("Authorization", False),
        ("Proxy-Authorization", False),
        ("Cookie", False),
        ("X-API-Key", False),
        ("x-auth-token", False),
        ("X-CSRF-Token", False),
        ("Host", False),
        ("Transfer-Encoding", False),
        ("X-Forwarded-For", False),
    ],
)
def test_safe_headers(name: str, safe: bool) -> None:
    assert is_safe_header(name) is safe


def test_records_with_request_attributes_carry_the_request() -> None:
    fact = facts_from_record(
        record(
            {
                "http.request.method": "PATCH",
                "url.full": "http://inventory:9000/stock/5?dry=1",
                "http.response.status_code": 503,
                "duration_ms": 80,
                "http.request.header.content-type": "application/json",
                "http.request.header.cookie": "a=b",
                "http.request.body": '{"delta": -1}',
            }
        )
    )
    assert isinstance(fact, RequestFact) and fact.is_error
    assert fact.request == HttpRequest(
        method="PATCH",
        scheme="http",
        host="inventory",
        port=9000,
        path="/stock/5",
        query="dry=1",
        headers={"content-type": "application/json"},
        body='{"delta": -1}',
    )
    client = facts_from_record(
        record(
            {"http.method": "GET", "url.full": "http://x/y", "http.status_code": 200, "span.kind": "client"}
        )
    )
    assert isinstance(client, RequestFact) and client.kind == "client" and client.request is None


def test_rrpair_records_carry_the_request() -> None:
    fact = facts_from_record(
        rrpair_log(
            {
                "msgType": "rrpair",
                "l7protocol": "http",
                "direction": "IN",
                "duration": 900,
                "http": {
                    "request": {
                        "method": "POST",
                        "url": "/api/accounts/991/transfer?notify=1",
                        "host": "frontend:8080",
                        "headers": {
                            "Content-Type": ["application/json"],
                            "Authorization": ["Basic dXNlcjpwYXNz"],
                            "X-Tenant": "acme",
                        },
                        "body": '{"to": 17, "amount": 5}',
                    },
                    "response": {"statusCode": 500},
                },
            }
        )
    )
    assert isinstance(fact, RequestFact) and fact.endpoint == "POST /api/accounts/{id}/transfer"
    assert fact.request == HttpRequest(
        method="POST",
        scheme="http",
        host="frontend",
        port=8080,
        path="/api/accounts/991/transfer",
        query="notify=1",
        headers={"content-type": "application/json", "x-tenant": "acme"},
        body='{"to": 17, "amount": 5}',
    )
    encoded = facts_from_record(
        rrpair_log(
            {
                "l7protocol": "https",
                "direction": "IN",
                "duration": 5,
                "http": {
                    "req": {"method": "PUT", "url": "https://frontend/x", "bodyBase64": "aGVsbG8="},
                    "res": {"statusCode": 200},
                },
            }
        )
    )
    assert isinstance(encoded, RequestFact) and encoded.request is not None
    assert (encoded.request.scheme, encoded.request.body, encoded.status) == ("https", "hello", 200)
    binary = facts_from_record(
        rrpair_log(
            {
                "l7protocol": "http",
                "direction": "IN",
                "duration": 5,
                "http": {"request": {"method": "POST", "url": "/upload", "bodyBase64": "//79"}},
            }
        )
    )
    assert isinstance(binary, RequestFact) and binary.request is not None
    assert binary.request.body is None and binary.request.body_truncated  # binary: not replayable as is


def test_signal_samples_and_incidents_keep_the_requests() -> None:
    windower = Windower(WindowConfig(size_s=60, allowed_lateness_s=0))
    closed = []
    for i in range(20):
        attrs = {**CAPTURED, "url.path": f"/orders/{i}/pay"}
        fact = facts_from_span(span(Span.SPAN_KIND_SERVER, attrs), RESOURCE, project="p1")
        assert isinstance(fact, RequestFact)
        closed += windower.add(fact)
    closed += windower.flush()
    signals = [s for window in closed for s in evaluate(window)]
    spike = next(s for s in signals if s.kind is SignalKind.ERROR_RATE_SPIKE)
    assert [f.request.path for f in spike.evidence.samples if f.request] == [
        "/orders/0/pay",
        "/orders/1/pay",
        "/orders/2/pay",
    ]
    correlator = Correlator()
    correlator.observe(signals, 1_700_000_100.0)
    restored = Correlator.from_state(orjson.loads(orjson.dumps(correlator.state())))
    [incident] = restored.incidents
    sample = incident.signals[0].evidence.samples[0]
    assert sample.request is not None and sample.request.headers["content-type"] == "application/json"
