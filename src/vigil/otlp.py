"""Decoding OTLP exports at the edge: validate, count, and cut into bus-sized messages.

The receiver does per item only what it must: the request is parsed once (in C, by upb) to
reject malformed input and count log records or spans, and the bytes the client sent go onto the
bus as they are. Flattening happens after the client has its answer.

Logs and traces share one implementation; a `Signal` names what differs between them.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from vigil.bus.topology import records_subject, spans_subject
from vigil.errors import InvalidPayload, PayloadTooLarge

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

HexIds = tuple[tuple[str, str, int], ...]
"""(camelCase key, snake_case key, size in bytes) of id fields that OTLP/JSON writes as hex."""

_TRACE_AND_SPAN_IDS: HexIds = (("traceId", "trace_id", 16), ("spanId", "span_id", 8))


@dataclass(frozen=True, slots=True)
class Signal:
    """One OTLP signal: its messages, the names of its three levels, and where it goes."""

    name: str
    """`logs` or `traces`: the OTLP/HTTP path `/v1/<name>` and the metrics label."""
    noun: str
    """What one item is called in error messages."""
    request: type[Message]
    response: type[Message]
    grpc_service: str
    resources: str
    scopes: str
    items: str
    """Protobuf field names of the three levels; OTLP/JSON may use them as keys too."""
    json_keys: tuple[str, str, str]
    """camelCase names of `resources`, `scopes` and `items` in OTLP/JSON."""
    hex_ids: HexIds
    nested_hex_ids: tuple[tuple[str, str, HexIds], ...]
    """Lists inside an item (camelCase, snake_case) whose entries carry hex ids too."""
    subject: Callable[[str], str]
    """The bus subject of a project's exports."""


LOGS = Signal(
    name="logs",
    noun="log record",
    request=ExportLogsServiceRequest,
    response=ExportLogsServiceResponse,
    grpc_service="opentelemetry.proto.collector.logs.v1.LogsService",
    resources="resource_logs",
    scopes="scope_logs",
    items="log_records",
    json_keys=("resourceLogs", "scopeLogs", "logRecords"),
    hex_ids=_TRACE_AND_SPAN_IDS,
    nested_hex_ids=(),
    subject=records_subject,
)

TRACES = Signal(
    name="traces",
    noun="span",
    request=ExportTraceServiceRequest,
    response=ExportTraceServiceResponse,
    grpc_service="opentelemetry.proto.collector.trace.v1.TraceService",
    resources="resource_spans",
    scopes="scope_spans",
    items="spans",
    json_keys=("resourceSpans", "scopeSpans", "spans"),
    hex_ids=(*_TRACE_AND_SPAN_IDS, ("parentSpanId", "parent_span_id", 8)),
    nested_hex_ids=(("links", "links", _TRACE_AND_SPAN_IDS),),
    subject=spans_subject,
)

SIGNALS = (LOGS, TRACES)


@dataclass(frozen=True, slots=True)
class DecodedExport:
    request: Message
    """The signal's export request message."""
    raw: bytes
    """Protobuf encoding of `request`: the client's own bytes when it sent protobuf."""
    records: int
    """Log records or spans in the export."""
    signal: Signal


_INFLATE_STEP = 256 * 1024


def decompress(
    body: bytes, encoding: str | None, limit: int, claim: Callable[[int], None] | None = None
) -> bytes:
    """The body unpacked, at most `limit` bytes; `claim` is told of the bytes as they are made, so
    that memory can be refused before it is held."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {limit}")
        return body
    if encoding not in ("gzip", "deflate"):
        raise InvalidPayload(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or identity")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        # A gzip body may hold several members (RFC 1952 §2.2); their contents are concatenated.
        inflater = zlib.decompressobj(wbits)
        pending = rest
        while True:
            try:
                piece = inflater.decompress(pending, _INFLATE_STEP) if pending else inflater.flush()
            except zlib.error as exc:
                raise InvalidPayload(f"body is not valid {encoding}: {exc}") from exc
            size += len(piece)
            if size > limit:
                raise PayloadTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
            if claim is not None:
                claim(len(piece))
            parts.append(piece)
            if not pending:
                break
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise InvalidPayload(f"{encoding} body is truncated")
        rest = inflater.unused_data
        if not rest:
            return b"".join(parts)
        if encoding != "gzip":
            raise InvalidPayload(f"{len(rest)} bytes follow the end of the {encoding} stream")


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == JSON


def decode(signal: Signal, body: bytes, content_type: str | None) -> DecodedExport:
    kind = (content_type or PROTOBUF).split(";")[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf", "application/octet-stream"):
        request = signal.request()
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            name = signal.request.DESCRIPTOR.name
            raise InvalidPayload(f"body is not a valid OTLP {name}: {exc}") from exc
        return DecodedExport(request, body, count_items(signal, request), signal)
    if kind == JSON:
        request = _parse_json(signal, body)
        return DecodedExport(request, request.SerializeToString(), count_items(signal, request), signal)
    raise InvalidPayload(
        f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}",
        details={"supported": [PROTOBUF, JSON]},
    )


def decode_logs(body: bytes, content_type: str | None) -> DecodedExport:
    return decode(LOGS, body, content_type)


def count_items(signal: Signal, request: Message) -> int:
    return sum(
        len(getattr(scope, signal.items))
        for resource in getattr(request, signal.resources)
        for scope in getattr(resource, signal.scopes)
    )


def count_records(request: ExportLogsServiceRequest) -> int:
    return count_items(LOGS, request)


def _parse_json(signal: Signal, body: bytes) -> Message:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidPayload(f"OTLP/JSON body must be an object with {signal.json_keys[0]}")
    try:
        _hex_ids_to_base64(signal, data)
        request: Message = json_format.ParseDict(data, signal.request(), ignore_unknown_fields=True)
        return request
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidPayload(f"body is not a valid OTLP/JSON {signal.name} export: {exc}") from exc


def _hex_ids_to_base64(signal: Signal, data: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping expects base64."""
    resources, scopes, items = signal.json_keys
    for resource in _list(data, resources, signal.resources):
        for scope in _list(resource, scopes, signal.scopes):
            for item in _list(scope, items, signal.items):
                _convert_ids(item, signal.hex_ids)
                for camel, snake_name, ids in signal.nested_hex_ids:
                    for entry in _list(item, camel, snake_name):
                        _convert_ids(entry, ids)


def _convert_ids(obj: Any, ids: HexIds) -> None:
    if not isinstance(obj, dict):
        return
    for camel, snake, size in ids:
        for key in (camel, snake):
            value = obj.get(key)
            if isinstance(value, str) and value:
                obj[key] = _hex_to_b64(value, key, size)


def _list(obj: Any, *keys: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise ValueError("expected an object")
    for key in keys:
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, list):
                raise ValueError(f"{key} must be a list")
            return value
    return []


def _hex_to_b64(value: str, field: str, size: int) -> str:
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{field} must be {size * 2} hex characters, got {value!r}") from exc
    if len(raw) != size:
        raise ValueError(f"{field} must be {size * 2} hex characters, got {value!r}")
    return base64.b64encode(raw).decode()


def split_for_bus(decoded: DecodedExport, max_bytes: int) -> list[bytes]:
    """Cut an export into messages of at most `max_bytes`, keeping each item with its resource
    and scope and keeping item order."""
    if len(decoded.raw) <= max_bytes:
        return [decoded.raw]
    signal = decoded.signal
    budget = int(max_bytes * 0.9)
    chunks: list[bytes] = []
    current = signal.request()
    size = 0
    for resource in getattr(decoded.request, signal.resources):
        for scope in getattr(resource, signal.scopes):
            target: Any = None
            envelope = _envelope_size(resource, scope)
            for item in getattr(scope, signal.items):
                item_size = item.ByteSize() + 8
                if envelope + item_size > budget:
                    raise PayloadTooLarge(
                        f"one {signal.noun} with its resource and scope is {envelope + item_size} bytes; "
                        f"the limit is {budget}"
                    )
                # An item opening its scope in this chunk brings the resource and scope with it.
                needed = item_size + (envelope if target is None else 0)
                if size + needed > budget and size:
                    chunks.append(current.SerializeToString())
                    current, size, target = signal.request(), 0, None
                if target is None:
                    target = _scope_in(signal, current, resource, scope)
                    size += envelope
                target.append(item)
                size += item_size
    if size:
        chunks.append(current.SerializeToString())
    return chunks


def _envelope_size(resource: Any, scope: Any) -> int:
    """An upper bound of what `_scope_in` adds to a request before any item: the resource, the
    scope, both schema URLs, and a tag and a length of at most 6 bytes for each of the six fields."""
    schema_urls = len(resource.schema_url.encode()) + len(scope.schema_url.encode())
    size: int = resource.resource.ByteSize() + scope.scope.ByteSize()
    return size + schema_urls + 36


def _scope_in(signal: Signal, request: Message, resource: Any, scope: Any) -> Any:
    """Add a copy of `resource` and `scope` (without items) to `request`; return its item list."""
    new_resource = getattr(request, signal.resources).add()
    new_resource.resource.CopyFrom(resource.resource)
    new_resource.schema_url = resource.schema_url
    new_scope = getattr(new_resource, signal.scopes).add()
    new_scope.scope.CopyFrom(scope.scope)
    new_scope.schema_url = scope.schema_url
    return getattr(new_scope, signal.items)
