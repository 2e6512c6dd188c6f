"""Request/response and query facts, from OTLP spans or from flat log records.

A `RequestFact` is one served (server) or made (client, db) call; a `QueryFact` is one database
statement. Both come from spans (`facts_from_span`) or from log records that carry the same
attributes (`facts_from_record`), including the Speedscale forwarder's RRPair records of seed 001,
whose body is the RRPair as a map (it reaches us as compact JSON in the flat record's body).

Spans use either the old or the current semantic-convention names (http.method and
http.request.method, db.statement and db.query.text, ...). Paths become routes by replacing ids
(numbers, uuids, hex and long mixed tokens) with `{id}`; statements are masked so that one query shape
is one key (literals and placeholders become `?`, IN lists collapse): see `normalize`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import BaseModel, ConfigDict, computed_field

from vigil.detect.normalize import normalize_route, normalize_statement
from vigil.records import FlatRecord, attributes

__all__ = [
    "Fact",
    "QueryFact",
    "RequestFact",
    "facts_from_record",
    "facts_from_span",
    "normalize_route",
    "normalize_statement",
]

Kind = Literal["server", "client", "db"]


class RequestFact(BaseModel):
    model_config = ConfigDict(frozen=True)

    project: str
    service: str
    kind: Kind
    method: str
    route: str
    status: int = 0
    is_error: bool = False
    duration_ms: float | None = None
    start_s: float
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    peer_service: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def endpoint(self) -> str:
        # a call made to another service is a different thing from the same route served here
        if self.kind == "server":
            return f"{self.method} {self.route}"
        return f"-> {self.peer_service or '?'} {self.method} {self.route}"


class QueryFact(BaseModel):
    model_config = ConfigDict(frozen=True)

    project: str
    service: str
    db_system: str
    statement: str
    duration_ms: float | None = None
    start_s: float
    is_error: bool = False
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None


Fact = RequestFact | QueryFact

# --- helpers ----------------------------------------------------------------------------------


def _first(attrs: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and out >= 0 else None  # NaN and negative durations are not durations


def _hex_or_none(raw: bytes | str | None) -> str | None:
    if isinstance(raw, bytes):
        raw = raw.hex()
    return raw if raw and raw.strip("0") else None


def _is_error(kind: Kind, status: int, failed: bool) -> bool:
    # semantic conventions: a 4xx is the caller's fault on the server side, the call's failure on the client side
    return failed or (status >= 500 if kind == "server" else status >= 400)


def _route(attrs: dict[str, Any]) -> str | None:
    route = _first(attrs, "http.route")
    if route is not None:
        return normalize_route(str(route))
    target = _first(attrs, "url.path", "http.target", "url.full", "http.url")
    return normalize_route(str(target)) if target is not None else None


# --- spans ------------------------------------------------------------------------------------

_SPAN_KINDS: dict[int, Kind] = {Span.SPAN_KIND_SERVER: "server", Span.SPAN_KIND_CLIENT: "client"}
_GRPC_SERVER_FAULTS = frozenset({2, 4, 12, 13, 14, 15})  # UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, ...


def facts_from_span(span: Span, resource_attrs: dict[str, Any], project: str = "default") -> Fact | None:
    """The fact a span describes, or None when it is neither a request/response nor a query."""
    attrs = attributes(span.attributes)
    service = str(resource_attrs.get("service.name") or "unknown")
    start = span.start_time_unix_nano / 1e9
    duration = max(0, span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    failed = span.status.code == Status.STATUS_CODE_ERROR
    ids: dict[str, Any] = {
        "trace_id": _hex_or_none(span.trace_id),
        "span_id": _hex_or_none(span.span_id),
        "parent_span_id": _hex_or_none(span.parent_span_id),
    }
    statement = _first(attrs, "db.query.text", "db.statement")
    db_system = _first(attrs, "db.system.name", "db.system")
    if statement is not None:
        return QueryFact(
            project=project,
            service=service,
            db_system=str(db_system or "unknown"),
            statement=normalize_statement(str(statement)),
            duration_ms=duration,
            start_s=start,
            is_error=failed,
            **ids,
        )
    kind: Kind | None = _SPAN_KINDS.get(span.kind)
    method = _first(attrs, "http.request.method", "http.method")
    route = _route(attrs)
    if db_system is not None and span.kind != Span.SPAN_KIND_SERVER:
        kind, method = "db", str(_first(attrs, "db.operation.name", "db.operation") or "CALL")
        target = _first(attrs, "db.collection.name", "db.sql.table", "db.name", "db.namespace")
        route = f"{db_system}/{target}" if target else str(db_system)
    elif method is None and _first(attrs, "rpc.system") is not None:
        method = str(attrs["rpc.system"]).upper()
        route = f"/{attrs.get('rpc.service', '?')}/{attrs.get('rpc.method', '?')}"
        code = _int(attrs.get("rpc.grpc.status_code"))
        failed = failed or (code in _GRPC_SERVER_FAULTS if kind == "server" else code != 0)
    if kind is None or method is None:
        return None
    status = _int(_first(attrs, "http.response.status_code", "http.status_code"))
    peer = _first(attrs, "peer.service", "server.address", "net.peer.name") if kind != "server" else None
    return RequestFact(
        project=project,
        service=service,
        kind=kind,
        method=str(method).upper(),
        route=route or "/",
        status=status,
        is_error=_is_error(kind, status, failed),
        duration_ms=duration,
        start_s=start,
        peer_service=None if peer is None else str(peer),
        **ids,
    )


# --- flat log records -------------------------------------------------------------------------

_DURATION_ATTRS = (
    ("duration_ms", 1.0),
    ("http.duration_ms", 1.0),
    ("latency_ms", 1.0),
    ("elapsed_ms", 1.0),
    ("duration", 1.0),
    ("http.server.request.duration", 1000.0),
    ("http.client.request.duration", 1000.0),
    ("duration_s", 1000.0),
    ("duration_ns", 1e-6),
)
_RRPAIR_HTTP = frozenset({"http", "https", "json", "grpc", "http2"})
_RRPAIR_DB = frozenset({"postgres", "postgresql", "mysql", "mssql", "oracle", "mongo", "mongodb", "redis"})


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _duration(attrs: dict[str, Any]) -> float | None:
    for name, scale in _DURATION_ATTRS:
        value = _float(attrs.get(name))
        if value is not None:
            return value * scale
    return None


def _rrpair(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, str) or not body.startswith("{"):
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and ("l7protocol" in data or data.get("msgType") == "rrpair"):
        return data
    return None


def facts_from_record(record: FlatRecord, project: str = "default") -> Fact | None:
    """The fact a flat log record describes, or None when it is not a request/response record."""
    attrs: dict[str, Any] = record.get("attributes") or {}
    resource: dict[str, Any] = record.get("resourceAttributes") or {}
    start = _timestamp(record.get("timestamp"))
    ids = {"trace_id": _hex_or_none(record.get("traceId")), "span_id": _hex_or_none(record.get("spanId"))}
    rr = _rrpair(record.get("body"))
    if rr is not None:
        # the forwarder's own resource is not the captured service: its `service` attribute names that
        service = attrs.get("service") or rr.get("service") or resource.get("service.name") or "unknown"
        return _from_rrpair(rr, project, str(service), start, ids)
    service = str(resource.get("service.name") or attrs.get("service") or "unknown")
    if start is None:
        return None
    statement = _first(attrs, "db.query.text", "db.statement")
    if statement is not None:
        return QueryFact(
            project=project,
            service=service,
            db_system=str(_first(attrs, "db.system.name", "db.system") or "unknown"),
            statement=normalize_statement(str(statement)),
            duration_ms=_duration(attrs),
            start_s=start,
            is_error=record.get("severityNumber", 0) >= 17,
            **ids,
        )
    method = _first(attrs, "http.request.method", "http.method")
    route = _route(attrs)
    status = _int(_first(attrs, "http.response.status_code", "http.status_code"))
    duration = _duration(attrs)
    if method is None or route is None or (status == 0 and duration is None):
        return None
    kind_attr = str(_first(attrs, "span.kind", "kind", "direction") or "server").lower()
    kind: Kind = "client" if kind_attr in ("client", "out", "outbound") else "server"
    peer = _first(attrs, "peer.service", "server.address") if kind == "client" else None
    return RequestFact(
        project=project,
        service=service,
        kind=kind,
        method=str(method).upper(),
        route=route,
        status=status,
        is_error=_is_error(kind, status, False),
        duration_ms=duration,
        start_s=start,
        peer_service=None if peer is None else str(peer),
        **ids,
    )


def _from_rrpair(
    rr: dict[str, Any], project: str, service: str, record_time: float | None, ids: dict[str, Any]
) -> Fact | None:
    start = _timestamp(rr.get("ts")) or record_time
    if start is None:
        return None
    proto = str(rr.get("l7protocol") or "").lower()
    duration = _float(rr.get("duration"))
    failed = str(rr.get("status") or "OK").upper() not in ("OK", "")
    if proto in _RRPAIR_DB:
        signature = rr.get("mutableSignature") or {}
        text = _first(signature, f"{proto}:query") if isinstance(signature, dict) else None
        text = text or rr.get("location") or rr.get("command")
        if not text:
            return None
        return QueryFact(
            project=project,
            service=service,
            db_system=proto,
            statement=normalize_statement(str(text)),
            duration_ms=duration,
            start_s=start,
            is_error=failed,
            **ids,
        )
    if proto not in _RRPAIR_HTTP:
        return None
    http = rr.get("http") or {}
    request = http.get("request") or {}
    url = str(request.get("url") or rr.get("location") or "/")
    status = _int((http.get("response") or {}).get("statusCode"))
    kind: Kind = "client" if str(rr.get("direction") or "IN").upper() == "OUT" else "server"
    peer = (urlsplit(url).hostname if "://" in url else None) if kind == "client" else None
    return RequestFact(
        project=project,
        service=service,
        kind=kind,
        method=str(request.get("method") or "GET").upper(),
        route=normalize_route(url),
        status=status,
        is_error=_is_error(kind, status, failed and status == 0),
        duration_ms=duration,
        start_s=start,
        peer_service=peer,
        **ids,
    )
