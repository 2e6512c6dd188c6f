"""The flat log record Vigil POSTs to agents, one per element of the batch's JSON array."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict


class LogRecord(TypedDict):
    resourceAttributes: dict[str, Any]
    severityNumber: int
    severityText: str
    body: Any
    """Usually a string; OpenTelemetry also allows maps, lists and numbers."""
    attributes: dict[str, Any]
    traceId: str
    spanId: str
    timestamp: str


def service_name(record: Mapping[str, Any], default: str = "unknown") -> str:
    """The record's `service.name` resource attribute, or `default` when it has none."""
    resource = record.get("resourceAttributes")
    if isinstance(resource, Mapping):
        name = resource.get("service.name")
        if isinstance(name, str) and name:
            return name
    return default


def body_text(record: Mapping[str, Any]) -> str:
    """The record's body as text: strings as they are, structured bodies as compact JSON."""
    body = record.get("body")
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
