"""The flat log record of the agent protocol and its conversion from OTLP.

{"resourceAttributes": {...}, "severityNumber": 17, "severityText": "ERROR", "body": "...",
 "attributes": {...}, "traceId": "hex", "spanId": "hex", "timestamp": "RFC 3339"}
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from vigil.severity import severity_from_text, severity_text

FlatRecord = dict[str, Any]


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in pairs:
        value = kv.value
        # most attribute values are strings: no call for those
        out[kv.key] = value.string_value if value.HasField("string_value") else any_value(value)
    return out


def body_text(value: AnyValue) -> str:
    """Bodies are strings in the flat format; structured bodies become compact JSON."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    converted = any_value(value)
    if isinstance(converted, dict | list):
        return orjson.dumps(converted).decode()
    return str(converted)


_last_second = [("-", "")]
"""The last whole second formatted (its digits, its text), swapped whole (a thread may read it
meanwhile): records come in time order, many in one second."""


def rfc3339(unix_nano: int) -> str:
    # the digits of the int cut in two cost less than dividing it (it takes more than 60 bits)
    digits = str(unix_nano)
    seconds = digits[:-9]
    last = _last_second[0]
    if seconds != last[0]:
        if unix_nano < 1_000_000_000:
            return _rfc3339_early(unix_nano)
        text = datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S")
        last = _last_second[0] = (seconds, text)
    # nine digits, trailing zeros dropped
    fraction = digits[-9:].rstrip("0")
    if fraction:
        return f"{last[1]}.{fraction}Z"
    return last[1] + "Z"


def _rfc3339_early(unix_nano: int) -> str:
    """Within the first second of 1970 (no whole second's digits to cut off)."""
    if unix_nano:
        return f"1970-01-01T00:00:00.{str(unix_nano + 1_000_000_000)[1:].rstrip('0')}Z"
    return "1970-01-01T00:00:00Z"


def effective_severity(record: LogRecord) -> int:
    """Severity number, derived from the text when a client sent only the text."""
    number: int = record.severity_number
    if number or not record.severity_text:
        return number
    return severity_from_text(record.severity_text)


def flatten(
    record: LogRecord,
    resource_attributes: dict[str, Any],
    received_unix_nano: int,
    severity: int | None = None,
) -> FlatRecord:
    """`severity`: the record's `effective_severity`, when the caller has it already."""
    if severity is None:
        severity = effective_severity(record)
    timestamp = record.time_unix_nano or record.observed_time_unix_nano or received_unix_nano
    return {
        "resourceAttributes": resource_attributes,
        "severityNumber": severity,
        "severityText": record.severity_text or severity_text(severity),
        "body": body_text(record.body),
        "attributes": attributes(record.attributes),
        "traceId": record.trace_id.hex(),
        "spanId": record.span_id.hex(),
        "timestamp": rfc3339(timestamp),
    }
