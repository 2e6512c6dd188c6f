"""Turns a batch of flat records (deduplicated or not) into evidence: one item per distinct
problem, with how many records it stands for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.agents.builtin.models import Evidence, EvidenceItem

TELLING_ATTRIBUTES = (
    "http.route",
    "http.request.method",
    "http.response.status_code",
    "http.status_code",
    "url.path",
    "db.system",
    "db.operation",
    "error.type",
    "exception.type",
    "peer.service",
    "server.address",
    "k8s.pod.name",
    "k8s.namespace.name",
    "deployment.environment",
)
_MAX_SAMPLES = 3
_MAX_ITEMS = 50


def _when(text: str) -> datetime:
    """Flat records carry RFC 3339 UTC with up to nanoseconds; datetime keeps microseconds."""
    head, _, fraction = text.rstrip("Z").partition(".")
    try:
        value = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)
    if fraction.isdigit():
        value = value.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return value


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _service(record: dict[str, Any]) -> str:
    return _text(_mapping(record.get("resourceAttributes")).get("service.name")) or "unknown"


def build_evidence(project_id: str, request_id: str, records: list[dict[str, Any]]) -> Evidence:
    items: dict[tuple[str, str], EvidenceItem] = {}
    for record in records:
        service = _service(record)
        body = _text(record.get("body"))
        template_id = _text(record.get("template_id")) or body[:64]
        key = (service, template_id)
        count = int(record.get("count", 1) or 1)
        first = _when(str(record.get("first_seen") or record.get("timestamp", "")))
        last = _when(str(record.get("last_seen") or record.get("timestamp", "")))
        samples = [_text(s) for s in record.get("samples") or [body]]
        item = items.get(key)
        if item is None:
            attributes = {**_mapping(record.get("resourceAttributes")), **_mapping(record.get("attributes"))}
            items[key] = EvidenceItem(
                template_id=template_id,
                template=_text(record.get("template")) or body,
                service=service,
                count=count,
                first_seen=min(first, last),
                last_seen=max(first, last),
                severity_number=max(0, min(24, int(record.get("severityNumber", 0) or 0))),
                samples=samples[:_MAX_SAMPLES],
                attributes={k: str(attributes[k]) for k in TELLING_ATTRIBUTES if k in attributes},
                trace_ids=[record["traceId"]] if record.get("traceId") else [],
            )
            continue
        item.count += count
        item.first_seen = min(item.first_seen, first)
        item.last_seen = max(item.last_seen, last)
        item.severity_number = max(item.severity_number, int(record.get("severityNumber", 0) or 0))
        for sample in samples:
            if len(item.samples) < _MAX_SAMPLES and sample not in item.samples:
                item.samples.append(sample)
        if record.get("traceId") and len(item.trace_ids) < 5 and record["traceId"] not in item.trace_ids:
            item.trace_ids.append(record["traceId"])
    ranked = sorted(items.values(), key=lambda i: (-i.count, -i.severity_number, i.service, i.template_id))
    return Evidence(project_id=project_id, request_id=request_id, items=ranked[:_MAX_ITEMS])
