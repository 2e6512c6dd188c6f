"""Log records shaped as Vigil POSTs them to agents."""

from __future__ import annotations

from typing import Any


def record(
    body: Any,
    service: str = "payment-service",
    severity: int = 17,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    text = {9: "INFO", 13: "WARN", 17: "ERROR", 21: "FATAL"}.get(severity, "ERROR")
    return {
        "resourceAttributes": {"service.name": service, "k8s.pod.name": f"{service}-abc123"},
        "severityNumber": severity,
        "severityText": text,
        "body": body,
        "attributes": attributes or {},
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": "00f067aa0ba902b7",
        "timestamp": "2024-01-15T10:30:00Z",
    }


SAMPLE_BATCH = [
    record("Connection refused: database pool exhausted"),
    record("Timeout waiting for DB connection after 30s"),
]
