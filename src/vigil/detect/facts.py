"""Request/response and query facts, from OTLP spans or from flat log records.

A `RequestFact` is one served (server) or made (client, db) call; a `QueryFact` is one database
statement. Both come from spans (`facts_from_span`) or from log records that carry the same
attributes (`facts_from_record`), including the Speedscale forwarder's RRPair (request/response pair) records,
whose body is the RRPair as a map (it reaches us as compact JSON in the flat record's body).

Spans use either the old or the current semantic-convention names (http.method and
http.request.method, db.statement and db.query.text, ...). Paths become routes by replacing ids
(numbers, uuids, hex and long mixed tokens) with `{id}`; statements are masked so that one query shape
is one key (literals and placeholders become `?`, IN lists collapse): see `normalize`.

A served request (kind `server`) whose span or record names the concrete request (`url.full`,
`http.url`, `url.path`, `http.target`, or an RRPair's request) also carries it as `request`
(`HttpRequest`), so that an incident's samples can be replayed (`vigil replay`): method, scheme,
host, port, path, query, the headers captured as `http.request.header.<name>` except credentials,
cookies, client addresses and hop-by-hop headers, and a text body (`http.request.body`) of at most
`MAX_BODY_BYTES`. Query, header values and body go through the built-in redaction rules for
credentials and card numbers, so a stored incident holds no secret; a replay sends the placeholders.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import orjson
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import BaseModel, ConfigDict, computed_field

from vigil.detect.normalize import normalize_route, normalize_statement
from vigil.pipeline.redact import RULES_BY_NAME, RedactionSpec, Redactor
from vigil.records import FlatRecord, attributes

__all__ = [
    "MAX_BODY_BYTES",
    "Fact",
    "HttpRequest",
    "QueryFact",
    "RequestFact",
    "facts_from_record",
    "facts_from_span",
    "is_safe_header",
    "normalize_route",
    "normalize_statement",
]

Kind = Literal["server", "client", "db"]

MAX_BODY_BYTES = 4 * 1024
"""Longest request body kept (UTF-8 bytes); a longer one is cut and marked `body_truncated`."""
MAX_HEADERS = 64
MAX_HEADER_VALUE = 1024


class HttpRequest(BaseModel):
    """The concrete HTTP request a server fact served, as far as its telemetry told (see the module
    docstring for what is left out)."""

    model_config = ConfigDict(frozen=True)

    method: str
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    path: str = "/"
    query: str | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    body_truncated: bool = False
    """The request had a body that `body` does not hold whole (longer than MAX_BODY_BYTES, or binary)."""

    @property
    def target(self) -> str:
        """Path and query, as in the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def url(self) -> str:
        """The original URL when the host is known, else the target."""
        if not self.host:
            return self.target
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme or 'http'}://{self.host}{port}{self.target}"


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
    request: HttpRequest | None = None  # server facts whose telemetry names the concrete request

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


# --- HTTP request details ---------------------------------------------------------------------

_HEADER_PREFIX = "http.request.header."
_BODY_ATTRS = ("http.request.body", "http.request.body.content")
# credentials, sessions and client addresses are never kept; hop-by-hop and framing headers are
# the replaying client's business
_DROPPED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "forwarded",
        "x-forwarded-for",
        "x-real-ip",
        "true-client-ip",
        "cf-connecting-ip",
    }
)
_SECRET_HEADER_PARTS = (
    "auth",
    "cookie",
    "token",
    "secret",
    "passw",
    "session",
    "signature",
    "credential",
    "api-key",
    "api_key",
    "apikey",
    "csrf",
    "xsrf",
)
# credentials and card numbers; e-mail addresses stay, as request bodies often need them to be valid
_REDACTOR = Redactor(RedactionSpec(rules=[name for name in RULES_BY_NAME if name != "email"]))


@lru_cache(maxsize=1024)
def _safe_name(lowered: str) -> bool:
    if lowered in _DROPPED_HEADERS or lowered.startswith(("proxy-", "x-amz-security")):
        return False
    return not any(part in lowered for part in _SECRET_HEADER_PARTS)


def is_safe_header(name: str) -> bool:
    """Whether a request header may be stored and replayed: no credentials, cookies, client
    addresses or hop-by-hop headers."""
    return _safe_name(name.lower())


def _redacted(text: str) -> str:
    return _REDACTOR.redact_text(text)[0]


def _header_value(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value if v is not None)
    if value is None or value == "":
        return None
    return _redacted(str(value)[:MAX_HEADER_VALUE])


def _safe_headers(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in items:
        if len(out) >= MAX_HEADERS:
            break
        name = str(name).strip().lower()
        if not name or not _safe_name(name):
            continue
        value = _header_value(raw)
        if value is not None:
            out[name] = value
    return out


def _body(text: Any) -> tuple[str | None, bool]:
    """A body as kept: text of at most MAX_BODY_BYTES, redacted; and whether it was cut."""
    if text is None or text == "":
        return None, False
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None, True
    elif not isinstance(text, str):
        text = orjson.dumps(text).decode() if isinstance(text, dict | list) else str(text)
    truncated = False
    if len(text) > MAX_BODY_BYTES // 4:  # a cheap test first: 4 bytes per character at most
        raw = text.encode("utf-8")
        if len(raw) > MAX_BODY_BYTES:
            text, truncated = raw[:MAX_BODY_BYTES].decode("utf-8", "ignore"), True
    return _redacted(text), truncated


def _port(value: Any) -> int | None:
    port = _int(value)
    return port if 0 < port < 65536 else None


def _url_port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # not a number, or out of range
        return None


def _http_request(attrs: dict[str, Any], method: str) -> HttpRequest | None:
    """The concrete request a server span or record describes, or None when it names no path."""
    full = _first(attrs, "url.full", "http.url")
    target = _first(attrs, "url.path", "http.target")
    if full is None and target is None:
        return None  # a route alone (/orders/{id}) is no request to send
    scheme = _first(attrs, "url.scheme", "http.scheme")
    host = _first(attrs, "server.address", "net.host.name", "http.host")
    port = _port(_first(attrs, "server.port", "net.host.port"))
    path, query = "/", None
    if full is not None:
        parts = urlsplit(str(full))
        scheme, host = scheme or parts.scheme or None, host or parts.hostname
        port = port or _url_port(parts)
        path, query = parts.path or "/", parts.query or None
    if target is not None:
        path, _, target_query = str(target).partition("?")
        query = query or target_query or None
    query = _first(attrs, "url.query") or query
    if isinstance(host, str) and ":" in host and not host.startswith("["):  # http.host: "name:port"
        host, _, host_port = host.partition(":")
        port = port or _port(host_port)
    skip = len(_HEADER_PREFIX)
    headers = _safe_headers((k[skip:], v) for k, v in attrs.items() if k.startswith(_HEADER_PREFIX))
    body, truncated = _body(_first(attrs, *_BODY_ATTRS))
    return HttpRequest(
        method=method,
        scheme=None if scheme is None else str(scheme).lower(),
        host=None if host is None else str(host),
        port=port,
        path=path if path.startswith("/") else f"/{path}",
        query=None if query is None else _redacted(str(query)),
        headers=headers,
        body=body,
        body_truncated=truncated,
    )


def _rrpair_request(request: dict[str, Any], method: str, proto: str) -> HttpRequest:
    url = str(request.get("url") or request.get("uri") or "/")
    parts = urlsplit(url)
    raw_headers = request.get("headers")
    headers = _safe_headers(raw_headers.items()) if isinstance(raw_headers, Mapping) else {}
    body: Any = request.get("body")
    if body is None and isinstance(request.get("bodyBase64"), str):
        try:
            body = base64.b64decode(request["bodyBase64"], validate=True)
        except (binascii.Error, ValueError):
            body = None
    text, truncated = _body(body)
    host = parts.hostname or (str(request["host"]) if request.get("host") else None)
    port = _url_port(parts)
    if host is not None and ":" in host and not host.startswith("["):
        host, _, host_port = host.partition(":")
        port = port or _port(host_port)
    scheme = parts.scheme or ("https" if proto == "https" else "http")
    return HttpRequest(
        method=method,
        scheme=scheme.lower(),
        host=host,
        port=port,
        path=parts.path or "/",
        query=_redacted(parts.query) if parts.query else None,
        headers=headers,
        body=text,
        body_truncated=truncated,
    )


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
    method = str(method).upper()
    return RequestFact(
        project=project,
        service=service,
        kind=kind,
        method=method,
        route=route or "/",
        status=status,
        is_error=_is_error(kind, status, failed),
        duration_ms=duration,
        start_s=start,
        peer_service=None if peer is None else str(peer),
        request=_http_request(attrs, method) if kind == "server" and "rpc.system" not in attrs else None,
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
    method = str(method).upper()
    return RequestFact(
        project=project,
        service=service,
        kind=kind,
        method=method,
        route=route,
        status=status,
        is_error=_is_error(kind, status, False),
        duration_ms=duration,
        start_s=start,
        peer_service=None if peer is None else str(peer),
        request=_http_request(attrs, method) if kind == "server" else None,
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
    request = http.get("request") or http.get("req") or {}
    response = http.get("response") or http.get("res") or {}
    url = str(request.get("url") or request.get("uri") or rr.get("location") or "/")
    status = _int(response.get("statusCode"))
    kind: Kind = "client" if str(rr.get("direction") or "IN").upper() == "OUT" else "server"
    peer = (urlsplit(url).hostname if "://" in url else None) if kind == "client" else None
    method = str(request.get("method") or "GET").upper()
    replayable = (
        kind == "server" and isinstance(request, dict) and bool(request.get("url") or request.get("uri"))
    )
    return RequestFact(
        project=project,
        service=service,
        kind=kind,
        method=method,
        route=normalize_route(url),
        status=status,
        is_error=_is_error(kind, status, failed and status == 0),
        duration_ms=duration,
        start_s=start,
        peer_service=peer,
        request=_rrpair_request(request, method, proto) if replayable else None,
        **ids,
    )
