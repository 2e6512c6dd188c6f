"""OTLP log exports built directly with opentelemetry-proto, for tests that need exact bytes."""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

ERROR = 17
INFO = 9


def kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def export(
    service: str,
    bodies: Sequence[str],
    *,
    severity: int = ERROR,
    attributes: dict[str, str | int] | None = None,
) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", service))
    sl = rl.scope_logs.add()
    now = time.time_ns()
    for i, body in enumerate(bodies):
        record = LogRecord(
            time_unix_nano=now + i,
            severity_number=severity,  # type: ignore[arg-type]
            severity_text="ERROR" if severity >= ERROR else "INFO",
            body=AnyValue(string_value=body),
        )
        for key, value in (attributes or {}).items():
            record.attributes.append(kv(key, value))
        sl.log_records.append(record)
    return request


def export_bytes(service: str, bodies: Sequence[str], **kwargs: object) -> bytes:
    return export(service, bodies, **kwargs).SerializeToString()  # type: ignore[arg-type]


PROTOBUF = {"Content-Type": "application/x-protobuf"}
