"""Decoding OTLP log exports at the edge: validate, count, and cut into bus-sized messages.

The receiver does per record only what it must: the request is parsed once (in C, by upb) to
reject malformed input and count records, and the bytes the client sent go onto the bus as they
are. Flattening happens in the pipeline, after the client has its answer.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs

from vigil.errors import InvalidPayload, PayloadTooLarge

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class DecodedExport:
    request: ExportLogsServiceRequest
    raw: bytes
    """Protobuf encoding of `request`: the client's own bytes when it sent protobuf."""
    records: int


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {limit}")
        return body
    if encoding not in ("gzip", "deflate"):
        raise InvalidPayload(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or identity")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    out = b""
    rest = body
    while True:
        # A gzip body may hold several members (RFC 1952 §2.2); their contents are concatenated.
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise InvalidPayload(f"body is not valid {encoding}: {exc}") from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
        if not inflater.eof:
            raise InvalidPayload(f"{encoding} body is truncated")
        rest = inflater.unused_data
        if not rest:
            return out
        if encoding != "gzip":
            raise InvalidPayload(f"{len(rest)} bytes follow the end of the {encoding} stream")


def decode_logs(body: bytes, content_type: str | None) -> DecodedExport:
    kind = (content_type or PROTOBUF).split(";")[0].strip().lower()
    if kind in (PROTOBUF, "application/protobuf", "application/octet-stream"):
        request = ExportLogsServiceRequest()
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise InvalidPayload(f"body is not a valid OTLP ExportLogsServiceRequest: {exc}") from exc
        return DecodedExport(request, body, count_records(request))
    if kind == JSON:
        request = _parse_json(body)
        return DecodedExport(request, request.SerializeToString(), count_records(request))
    raise InvalidPayload(
        f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}",
        details={"supported": [PROTOBUF, JSON]},
    )


def count_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def _parse_json(body: bytes) -> ExportLogsServiceRequest:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidPayload("OTLP/JSON body must be an object with resourceLogs")
    try:
        _hex_ids_to_base64(data)
        request: ExportLogsServiceRequest = json_format.ParseDict(
            data, ExportLogsServiceRequest(), ignore_unknown_fields=True
        )
        return request
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidPayload(f"body is not a valid OTLP/JSON logs export: {exc}") from exc


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping expects base64."""
    for rl in _list(data, "resourceLogs", "resource_logs"):
        for sl in _list(rl, "scopeLogs", "scope_logs"):
            for rec in _list(sl, "logRecords", "log_records"):
                for camel, snake, size in (("traceId", "trace_id", 16), ("spanId", "span_id", 8)):
                    for key in (camel, snake):
                        value = rec.get(key) if isinstance(rec, dict) else None
                        if isinstance(value, str) and value:
                            rec[key] = _hex_to_b64(value, key, size)


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
    """Cut an export into messages of at most `max_bytes`, keeping each record with its resource
    and scope and keeping record order."""
    if len(decoded.raw) <= max_bytes:
        return [decoded.raw]
    budget = int(max_bytes * 0.9)
    chunks: list[bytes] = []
    current = ExportLogsServiceRequest()
    size = 0
    for rl in decoded.request.resource_logs:
        for sl in rl.scope_logs:
            target: ScopeLogs | None = None
            envelope = _envelope_size(rl, sl)
            for record in sl.log_records:
                record_size = record.ByteSize() + 8
                if envelope + record_size > budget:
                    raise PayloadTooLarge(
                        f"one log record with its resource and scope is {envelope + record_size} bytes; "
                        f"the limit is {budget}"
                    )
                # A record opening its scope in this chunk brings the resource and scope with it.
                needed = record_size + (envelope if target is None else 0)
                if size + needed > budget and size:
                    chunks.append(current.SerializeToString())
                    current, size, target = ExportLogsServiceRequest(), 0, None
                if target is None:
                    target = _scope_in(current, rl, sl)
                    size += envelope
                target.log_records.append(record)
                size += record_size
    if size:
        chunks.append(current.SerializeToString())
    return chunks


def _envelope_size(rl: ResourceLogs, sl: ScopeLogs) -> int:
    """An upper bound of what `_scope_in` adds to a request before any record: the resource, the
    scope, both schema URLs, and a tag and a length of at most 6 bytes for each of the six fields."""
    schema_urls = len(rl.schema_url.encode()) + len(sl.schema_url.encode())
    size: int = rl.resource.ByteSize() + sl.scope.ByteSize()
    return size + schema_urls + 36


def _scope_in(request: ExportLogsServiceRequest, rl: ResourceLogs, sl: ScopeLogs) -> ScopeLogs:
    new_rl = request.resource_logs.add()
    new_rl.resource.CopyFrom(rl.resource)
    new_rl.schema_url = rl.schema_url
    new_sl: ScopeLogs = new_rl.scope_logs.add()
    new_sl.scope.CopyFrom(sl.scope)
    new_sl.schema_url = sl.schema_url
    return new_sl
