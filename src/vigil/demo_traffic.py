"""Realistic OTLP log traffic from a small shop, for `vigil demo`, tests and benchmarks.

Five services log a steady mix of severities; in the middle of the run payment-service's database
pool runs dry and errors cascade to checkout and frontend, the kind of incident a pipeline exists
to catch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from vigil.severity import SEVERITY_BY_NAME, severity_text

SERVICES = ("frontend", "checkout", "payment-service", "inventory", "auth")

Attributes = dict[str, str | int | float | bool]

_VERSIONS = {
    "frontend": "2.14.0",
    "checkout": "1.8.3",
    "payment-service": "3.2.1",
    "inventory": "1.22.0",
    "auth": "4.0.7",
}
_ROUTES = ("/", "/products/{id}", "/cart", "/search", "/api/recommendations")
_BURST_SHARE = 0.45
"""Share of records drawn from the incident templates while the burst lasts."""


@dataclass(frozen=True)
class _Template:
    service: str
    severity: str
    body: str
    """A format string over the fields of `_fields`."""
    attributes: Callable[[random.Random], Attributes]
    weight: float = 1.0


def _fields(rng: random.Random) -> dict[str, Any]:
    return {
        "order": f"ord_{rng.randrange(10**7, 10**8)}",
        "cart": f"cart_{rng.randrange(10**5, 10**6)}",
        "sku": f"SKU-{rng.randrange(1000, 9999)}",
        "user": f"user_{rng.randrange(1, 5000)}",
        "ip": f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}",
        "ms": rng.randrange(3, 900),
        "slow_ms": rng.randrange(1200, 4800),
        "amount": f"{rng.uniform(5, 400):.2f}",
        "items": rng.randrange(1, 8),
        "n": rng.randrange(1, 50),
        "route": rng.choice(_ROUTES),
    }


def _http(method: str, route: str, status: int) -> Callable[[random.Random], Attributes]:
    return lambda rng: {
        "http.method": method,
        "http.route": route,
        "http.status_code": status,
        "http.server.duration_ms": rng.randrange(3, 900),
    }


def _db(system: str, operation: str = "SELECT", **extra: str) -> Callable[[random.Random], Attributes]:
    return lambda rng: {"db.system": system, "db.operation": operation, **extra}


def _none(rng: random.Random) -> Attributes:
    return {}


_NORMAL = (
    _Template("frontend", "INFO", "GET {route} 200 in {ms}ms", _http("GET", "/products/{id}", 200), 6),
    _Template("frontend", "INFO", "Rendered product page for {sku}", _http("GET", "/products/{id}", 200), 3),
    _Template("frontend", "DEBUG", "Cache hit for product:{sku}", _db("redis", "GET"), 2),
    _Template(
        "frontend",
        "WARN",
        "Slow response from checkout: {slow_ms}ms",
        _http("POST", "/api/checkout", 200),
        0.6,
    ),
    _Template(
        "frontend",
        "ERROR",
        "GET /api/recommendations 504 Gateway Timeout",
        _http("GET", "/api/recommendations", 504),
        0.15,
    ),
    _Template(
        "checkout",
        "INFO",
        "Cart {cart} checked out: {items} items, total {amount} USD",
        _http("POST", "/api/checkout", 200),
        3,
    ),
    _Template(
        "checkout", "INFO", "Order {order} created", _db("postgresql", "INSERT", **{"db.name": "orders"}), 2
    ),
    _Template("checkout", "DEBUG", "Reserving stock for order {order}", _none, 1.5),
    _Template(
        "checkout",
        "WARN",
        "Retrying payment authorization for order {order} (attempt 2/3)",
        _http("POST", "/api/payments", 503),
        0.4,
    ),
    _Template(
        "payment-service",
        "INFO",
        "Payment authorized for order {order}: {amount} USD",
        lambda rng: {"payment.provider": "stripe", "db.system": "postgresql"},
        3,
    ),
    _Template(
        "payment-service",
        "DEBUG",
        "Acquired DB connection from pool (active={n}/50)",
        _db("postgresql", **{"db.name": "payments"}),
        2,
    ),
    _Template(
        "payment-service",
        "WARN",
        "DB connection pool usage high: {n}/50",
        _db("postgresql", **{"db.name": "payments"}),
        0.3,
    ),
    _Template("inventory", "INFO", "Stock level for {sku}: {n} units", _db("redis", "GET"), 3),
    _Template(
        "inventory",
        "DEBUG",
        "Query inventory.items took {ms}ms",
        _db("postgresql", **{"db.name": "inventory"}),
        2,
    ),
    _Template(
        "inventory",
        "WARN",
        "Low stock for {sku}: {n} units left",
        _db("postgresql", **{"db.name": "inventory"}),
        0.5,
    ),
    _Template("auth", "INFO", "User {user} logged in", _http("POST", "/api/login", 200), 3),
    _Template("auth", "INFO", "Token refreshed for {user}", _http("POST", "/api/token", 200), 2),
    _Template("auth", "WARN", "Failed login for {user} from {ip}", _http("POST", "/api/login", 401), 0.7),
    _Template(
        "auth",
        "ERROR",
        "JWKS fetch failed: certificate verify failed",
        lambda rng: {"error.type": "SSLError"},
        0.05,
    ),
)

_PAYMENTS_DB = _db(
    "postgresql",
    "CONNECT",
    **{"db.name": "payments", "net.peer.name": "payments-db", "error.type": "ConnectionRefusedError"},
)

_INCIDENT = (
    _Template("payment-service", "ERROR", "Connection refused: database pool exhausted", _PAYMENTS_DB, 5),
    _Template(
        "payment-service",
        "ERROR",
        "Timeout waiting for DB connection after 30s",
        _db("postgresql", "CONNECT", **{"db.name": "payments", "error.type": "TimeoutError"}),
        3,
    ),
    _Template(
        "payment-service",
        "FATAL",
        "Payment authorization failed for order {order}: upstream returned 503",
        _http("POST", "/api/payments", 503),
        1,
    ),
    _Template(
        "payment-service",
        "WARN",
        "Circuit breaker OPEN for payments-db",
        _db("postgresql", "CONNECT", **{"db.name": "payments"}),
        0.7,
    ),
    _Template(
        "checkout",
        "ERROR",
        "Payment service unavailable for order {order}, giving up (attempt 3/3)",
        _http("POST", "/api/payments", 503),
        2,
    ),
    _Template(
        "frontend", "ERROR", "POST /api/checkout 502 Bad Gateway", _http("POST", "/api/checkout", 502), 1.5
    ),
)


def _any_value(value: str | int | float | bool) -> AnyValue:
    # bool before int: True is an int to Python but a bool_value to OTLP.
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _key_values(attributes: Attributes) -> list[KeyValue]:
    return [KeyValue(key=k, value=_any_value(v)) for k, v in attributes.items()]


def _resource(service: str, pod: str) -> Resource:
    return Resource(
        attributes=_key_values(
            {
                "service.name": service,
                "service.namespace": "shop",
                "service.version": _VERSIONS[service],
                "deployment.environment": "demo",
                "k8s.namespace.name": "shop",
                "k8s.pod.name": pod,
                "host.name": f"node-{sum(map(ord, pod)) % 3 + 1}",
            }
        )
    )


class _Shop:
    """Draws records; keeps a few traces open so records of one request share a trace id."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.traces = [rng.randbytes(16) for _ in range(16)]
        self.pods = {
            s: [f"{s}-{rng.randbytes(3).hex()}-{rng.randbytes(2).hex()}" for _ in range(2)] for s in SERVICES
        }
        self._normal_weights = [t.weight for t in _NORMAL]
        self._incident_weights = [t.weight for t in _INCIDENT]

    def template(self, in_burst: bool) -> _Template:
        if in_burst and self.rng.random() < _BURST_SHARE:
            return self.rng.choices(_INCIDENT, self._incident_weights)[0]
        return self.rng.choices(_NORMAL, self._normal_weights)[0]

    def trace_id(self) -> bytes:
        slot = self.rng.randrange(len(self.traces))
        if self.rng.random() < 0.3:
            self.traces[slot] = self.rng.randbytes(16)
        return self.traces[slot]

    def record(self, template: _Template, time_ns: int) -> LogRecord:
        number = SEVERITY_BY_NAME[template.severity]
        return LogRecord(
            time_unix_nano=time_ns,
            observed_time_unix_nano=time_ns + self.rng.randrange(100_000, 5_000_000),
            severity_number=cast("SeverityNumber.ValueType", number),
            severity_text=severity_text(number),
            body=AnyValue(string_value=template.body.format(**_fields(self.rng))),
            attributes=_key_values(template.attributes(self.rng)),
            trace_id=self.trace_id(),
            span_id=self.rng.randbytes(8),
            flags=1,
        )


def generate_requests(
    total_records: int,
    *,
    records_per_request: int = 50,
    burst: tuple[float, float] | None = (0.4, 0.6),
    seed: int | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> Iterator[ExportLogsServiceRequest]:
    """OTLP export requests holding `total_records` records in all, `records_per_request` each.

    `burst` is the part of the run (as fractions of `total_records`) during which the incident
    happens; None for none. Records are stamped from `clock` when their request is built, so a
    lazily consumed generator yields live timestamps. A `seed` makes the traffic repeatable.
    """
    if total_records < 0 or records_per_request < 1:
        raise ValueError("total_records must be >= 0 and records_per_request >= 1")
    shop = _Shop(random.Random(seed))
    for start in range(0, total_records, records_per_request):
        count = min(records_per_request, total_records - start)
        now = clock()
        grouped: dict[tuple[str, str], list[LogRecord]] = {}
        for i in range(count):
            position = (start + i) / total_records
            in_burst = burst is not None and burst[0] <= position < burst[1]
            template = shop.template(in_burst)
            pod = shop.rng.choice(shop.pods[template.service])
            # Spread a request's records over the moment before it is sent, oldest first.
            time_ns = now - (count - i) * 1_000_000
            grouped.setdefault((template.service, pod), []).append(shop.record(template, time_ns))
        yield ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=_resource(service, pod),
                    scope_logs=[
                        ScopeLogs(
                            scope=InstrumentationScope(name=f"shop.{service}", version=_VERSIONS[service]),
                            log_records=records,
                        )
                    ],
                )
                for (service, pod), records in grouped.items()
            ]
        )


def count_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(scope.log_records) for rl in request.resource_logs for scope in rl.scope_logs)
