from __future__ import annotations

from vigil_sdk.records import LogRecord, body_text, service_name

RECORD: LogRecord = {
    "resourceAttributes": {"service.name": "payment-service", "k8s.pod.name": "payment-abc123"},
    "severityNumber": 17,
    "severityText": "ERROR",
    "body": "Connection refused: database pool exhausted",
    "attributes": {},
    "traceId": "",
    "spanId": "",
    "timestamp": "2024-01-15T10:30:00Z",
}


def test_service_name_reads_the_resource_attribute() -> None:
    assert service_name(RECORD) == "payment-service"


def test_service_name_falls_back_when_missing_or_malformed() -> None:
    assert service_name({"resourceAttributes": {}}) == "unknown"
    assert service_name({"resourceAttributes": "oops"}, default="?") == "?"
    assert service_name({}) == "unknown"


def test_body_text_keeps_strings_and_encodes_structured_bodies() -> None:
    assert body_text(RECORD) == "Connection refused: database pool exhausted"
    assert body_text({"body": {"msg": "x", "code": 5}}) == '{"code":5,"msg":"x"}'
    assert body_text({}) == ""
