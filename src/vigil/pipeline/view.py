"""The router's view of an OTLP logs export: the same bytes, parsed with a schema that keeps each
log record's attributes as their raw `KeyValue` bytes.

Most of the cost of reading an export in Python is in the attribute objects: the protobuf
parser makes a `KeyValue` and an `AnyValue` per attribute, and reading one back costs about a
microsecond. The view's parse makes one bytes object per attribute instead (the wire format is
the same, so any export the receivers took parses; a resource's attributes are kept the same way), and `record_attributes` turns them into
values: the usual shapes (a short key with a string, int, double or bool) are read straight from
the bytes, anything else through the real `KeyValue`, and attributes seen lately (methods,
routes, status codes repeat from record to record) come from a bounded cache of two generations
(`_AttributeCache`). The view checks less than the full schema (an attribute's bytes are read
only when its record is), which is safe because the receivers publish only exports that parsed
whole with it; a message that breaks an attribute anyway (from another producer on the bus) fails
its routing, and the router then drops it once, as one that fails the first parse. Records only the router reads are parsed this way; the flat record is the one `vigil.records.flatten` makes
(tests/pipeline/test_view.py holds the two to identical results).
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.common.v1 import common_pb2

from vigil.records import FlatRecord, any_value, body_text, effective_severity, rfc3339
from vigil.severity import severity_text

_FILE = "vigil/pipeline/view_logs.proto"
_PACKAGE = "vigil.view"
_CACHE_SIZE = 8192
"""Entries per generation of the attribute cache (two generations: at most 16,384 entries). An
entry costs at most about 600 bytes (the `KeyValue` bytes up to `_CACHE_MAX_BYTES`, its key and
string value, the pair, the dict slot), about 250 on the load generator's attributes: 4 MB per
router process typically, 10 MB at worst."""
_CACHE_MAX_BYTES = 160
"""Longer attributes are rarely repeated: not cached."""
_DOUBLE = struct.Struct("<d").unpack_from


def _build() -> Any:
    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Export"))
    except KeyError:
        pass
    f = descriptor_pb2.FieldDescriptorProto
    one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    proto = descriptor_pb2.FileDescriptorProto(name=_FILE, package=_PACKAGE, syntax="proto3")
    proto.dependency.append(common_pb2.DESCRIPTOR.name)
    # (message, [(field, number, type, label, message type)]): numbers as in logs.proto
    messages: list[tuple[str, list[tuple[str, int, int, int, str]]]] = [
        ("Export", [("resource_logs", 1, f.TYPE_MESSAGE, many, f".{_PACKAGE}.ResourceLogs")]),
        (
            "ResourceLogs",
            [
                ("resource", 1, f.TYPE_MESSAGE, one, f".{_PACKAGE}.Resource"),
                ("scope_logs", 2, f.TYPE_MESSAGE, many, f".{_PACKAGE}.ScopeLogs"),
            ],
        ),
        ("Resource", [("attributes", 1, f.TYPE_BYTES, many, "")]),
        ("ScopeLogs", [("log_records", 2, f.TYPE_MESSAGE, many, f".{_PACKAGE}.LogRecord")]),
        (
            "LogRecord",
            [
                ("time_unix_nano", 1, f.TYPE_FIXED64, one, ""),
                ("severity_number", 2, f.TYPE_INT32, one, ""),
                ("severity_text", 3, f.TYPE_STRING, one, ""),
                ("body", 5, f.TYPE_MESSAGE, one, ".opentelemetry.proto.common.v1.AnyValue"),
                ("attributes", 6, f.TYPE_BYTES, many, ""),
                ("trace_id", 9, f.TYPE_BYTES, one, ""),
                ("span_id", 10, f.TYPE_BYTES, one, ""),
                ("observed_time_unix_nano", 11, f.TYPE_FIXED64, one, ""),
            ],
        ),
    ]
    for name, fields in messages:
        message = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Export"))


ViewExport: Any = _build()
"""`ExportLogsServiceRequest` as the router reads it: `.FromString(data)`."""


class _AttributeCache:
    """Decoded attributes by their `KeyValue` bytes, in two generations: new entries go to the
    current one; when it is full it becomes the previous one (the one before is dropped), and an
    entry found only in the previous generation moves back to the current one. A hit in the
    current generation is one dict lookup; entries used since the last turn survive the next, so
    a working set somewhat larger than one generation still mostly hits (clearing everything when
    full made a working set just over the size miss on almost every lookup), and memory stays
    bounded by two generations."""

    __slots__ = ("current", "previous", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.current: dict[bytes, tuple[str, Any]] = {}
        self.previous: dict[bytes, tuple[str, Any]] = {}

    def miss(self, raw: bytes) -> tuple[str, Any] | None:
        """The pair of `raw`, found in neither generation: decoded (None when `_decode` cannot
        read it) and kept in the current generation."""
        pair = _decode(raw)
        if pair is None or len(raw) > _CACHE_MAX_BYTES:
            return pair
        return self.keep(raw, pair)

    def keep(self, raw: bytes, pair: tuple[str, Any]) -> tuple[str, Any]:
        """`pair` kept in the current generation (a new one when it is full)."""
        if len(self.current) >= self.size:
            self.previous = self.current
            self.current = {}
        self.current[raw] = pair
        return pair


_cache = _AttributeCache(_CACHE_SIZE)


def _varint(raw: bytes, start: int, end: int) -> tuple[int, int] | None:
    value = shift = 0
    for i in range(start, end):
        byte = raw[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    return None


def _decode(raw: bytes) -> tuple[str, Any] | None:
    """The common shapes, read from the wire format; None for anything else (the caller then
    parses the `KeyValue`). Exactly: key field, then value field, both with one-byte lengths,
    and the value holding one scalar field that ends where the attribute ends."""
    n = len(raw)
    if n < 4 or raw[0] != 0x0A:
        return None
    key_end = 2 + raw[1]
    if raw[1] >= 0x80 or key_end + 2 > n or raw[key_end] != 0x12:
        return None
    value_length = raw[key_end + 1]
    if value_length >= 0x80 or key_end + 2 + value_length != n or value_length < 2:
        return None
    key = raw[2:key_end].decode()
    tag, at = raw[key_end + 2], key_end + 3
    if tag == 0x0A:  # string_value
        if raw[at] < 0x80 and at + 1 + raw[at] == n:
            return key, raw[at + 1 :].decode()
    elif tag == 0x18:  # int_value (int64, two's complement)
        read = _varint(raw, at, n)
        if read is not None and read[1] == n:
            return key, read[0] - (1 << 64) if read[0] >= 1 << 63 else read[0]
    elif tag == 0x21:  # double_value
        if at + 8 == n:
            return key, _DOUBLE(raw, at)[0]
    elif tag == 0x10 and at + 1 == n and raw[at] < 2:  # bool_value
        return key, raw[at] == 1
    return None


def record_attributes(pairs: Any) -> dict[str, Any]:
    """A view record's attributes (raw `KeyValue` bytes, in a repeated field or a list), as
    `vigil.records.attributes` gives them."""
    out: dict[str, Any] = {}
    cache = _cache
    current = cache.current
    # a list copied in one call is read faster than the protobuf container's own iterator
    for raw in pairs[:]:
        pair = current.get(raw)
        if pair is None:
            # mostly found in the previous generation: moved back without a call
            pair = cache.previous.pop(raw, None)
            if pair is not None and len(current) < cache.size:
                current[raw] = pair
            else:
                pair = cache.miss(raw) if pair is None else cache.keep(raw, pair)
                current = cache.current  # a new generation when the last one was full
                if pair is None:
                    kv = common_pb2.KeyValue.FromString(raw)
                    value = kv.value
                    pair = kv.key, value.string_value if value.HasField("string_value") else any_value(value)
        out[pair[0]] = pair[1]
    return out


def flatten_view(
    record: Any, resource_attributes: dict[str, Any], received_unix_nano: int, severity: int | None = None
) -> FlatRecord:
    """`vigil.records.flatten` of a view record."""
    if severity is None:
        severity = effective_severity(record)
    body = record.body
    # a non-empty string_value is a string body: no need to ask which kind the body is
    text = body.string_value or body_text(body)
    return {
        "resourceAttributes": resource_attributes,
        "severityNumber": severity,
        "severityText": record.severity_text or severity_text(severity),
        "body": text,
        "attributes": record_attributes(record.attributes),
        "traceId": record.trace_id.hex(),
        "spanId": record.span_id.hex(),
        "timestamp": rfc3339(record.time_unix_nano or record.observed_time_unix_nano or received_unix_nano),
    }
