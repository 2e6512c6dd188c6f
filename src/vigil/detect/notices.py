"""Incident events on the bus, and the flat records that pipelines route to agents.

The detector publishes every incident event (opened, reopened, updated, resolved) as an
`IncidentNotice` on `vigil.incidents.<project>`. A notice is a compact snapshot: the signals without
their evidence (the API has that), so a notice stays small however much evidence an incident holds.

Pipelines whose filter takes the `incident` kind receive a notice as the agent protocol's flat record, so an
agent written for log records works on incidents unchanged: the title is the body, the severity maps
to OTLP's (info 9, warning 13, critical 17), the lead service is `service.name`, and
`vigil.incident.*` attributes carry what filters and agents need. The whole snapshot rides along
under `incident`, and `kind` says what the record is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from vigil.detect.incidents import IncidentEvent
from vigil.detect.signals import Severity, SignalKind
from vigil.records import FlatRecord, rfc3339

__all__ = ["INCIDENT_KIND", "SEVERITY_NUMBER", "IncidentNotice", "NoticeSignal"]

INCIDENT_KIND = "incident"
SEVERITY_NUMBER = {Severity.INFO: 9, Severity.WARNING: 13, Severity.CRITICAL: 17}
_SEVERITY_TEXT = {Severity.INFO: "INFO", Severity.WARNING: "WARN", Severity.CRITICAL: "ERROR"}
_MAX_TRACE_IDS = 20


class NoticeSignal(BaseModel):
    kind: SignalKind
    severity: Severity
    service: str
    endpoint: str | None = None
    statement: str | None = None
    title: str
    value: float
    threshold: float
    fingerprint: str
    window_start: float
    window_end: float


class IncidentNotice(BaseModel):
    event: Literal["opened", "reopened", "updated", "resolved"]
    at: float
    id: str
    project: str
    title: str
    severity: Severity
    status: Literal["open", "resolved"]
    services: list[str]
    opened_at: float
    resolved_at: float | None = None
    reopened: int = 0
    signals: list[NoticeSignal]
    trace_ids: list[str] = []

    @classmethod
    def of(cls, event: IncidentEvent) -> IncidentNotice:
        incident = event.incident
        return cls(
            event=event.type,
            at=event.at,
            id=incident.id,
            project=incident.project,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            services=incident.services,
            opened_at=incident.opened_at,
            resolved_at=incident.resolved_at,
            reopened=incident.reopened,
            signals=[
                NoticeSignal.model_validate(signal.model_dump(exclude={"evidence", "project"}))
                for signal in incident.signals
            ],
            trace_ids=incident.trace_ids[:_MAX_TRACE_IDS],
        )

    @property
    def msg_id(self) -> str:
        """The same event published twice (a retry, a restart) is stored once by the bus."""
        return f"incident:{self.id}:{self.event}:{round(self.at * 1000)}"

    @property
    def lead_service(self) -> str:
        return self.services[0] if self.services else ""

    def record(self) -> FlatRecord:
        """The notice as the flat record pipelines batch and agents receive."""
        kinds = sorted({signal.kind.value for signal in self.signals})
        return {
            "resourceAttributes": {"service.name": self.lead_service},
            "severityNumber": SEVERITY_NUMBER[self.severity],
            "severityText": _SEVERITY_TEXT[self.severity],
            "body": f"Incident {self.event}: {self.title}",
            "attributes": {
                "vigil.kind": INCIDENT_KIND,
                "vigil.incident.id": self.id,
                "vigil.incident.event": self.event,
                "vigil.incident.status": self.status,
                "vigil.incident.severity": self.severity.value,
                "vigil.incident.services": list(self.services),
                "vigil.incident.signal_kinds": kinds,
                "vigil.incident.url": f"/api/v1/projects/{self.project}/incidents/{self.id}",
            },
            "traceId": self.trace_ids[0] if self.trace_ids else "",
            "spanId": "",
            "timestamp": rfc3339(round(self.at * 1e9)),
            "kind": INCIDENT_KIND,
            "incident": self.model_dump(mode="json", exclude={"project"}),
        }
