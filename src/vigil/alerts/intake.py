"""Alert notifications into incidents: one incident per alert and firing episode, deduplicated by
fingerprint, with counts that show the deduplication; resolved alerts resolve their incident.

A notification is answered only once it and the incidents it touched are committed, in one
transaction: an accepted alert is never lost, and a retried notification counts again but opens
nothing twice.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from prometheus_client import Counter
from sqlalchemy import BindParameter, Connection, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from vigil.alerts.models import (
    AlertLabels,
    Source,
    WebhookAlert,
    WebhookNotification,
    alert_summary,
    incident_id,
    services_of,
    title_of,
)
from vigil.detect.signals import Severity
from vigil.errors import NotFound, TransientError
from vigil.store.models import AlertNotification, IncidentRow, Project
from vigil.store.repo import Store, utcnow

_INCIDENTS = cast(Table, IncidentRow.__table__)
_PROJECTS = cast(Table, Project.__table__)
_NOTIFICATIONS = cast(Table, AlertNotification.__table__)
_INCIDENT_UPDATE = (
    update(_INCIDENTS)
    .where(_INCIDENTS.c.id == bindparam("key"))
    .values(
        status=bindparam("status"),
        severity=bindparam("severity"),
        updated_at=bindparam("updated_at"),
        body=bindparam("body"),
    )
)
# Statements made once: SQLAlchemy then reuses their compiled form without walking them again
# (a statement built per call costs about 100 µs more, and every alert runs these).
_PROJECT_EXISTS = select(_PROJECTS.c.id).where(_PROJECTS.c.id == bindparam("project_id"))
_KEYS: BindParameter[list[str]] = bindparam("keys", expanding=True)
_LOCK_INCIDENTS = update(_INCIDENTS).where(_INCIDENTS.c.id.in_(_KEYS)).values(status=_INCIDENTS.c.status)
_STORED_INCIDENTS = select(_INCIDENTS.c.id, _INCIDENTS.c.body).where(_INCIDENTS.c.id.in_(_KEYS))
_INCIDENT_INSERT = insert(_INCIDENTS)
_NOTIFICATION_INSERT = insert(_NOTIFICATIONS)
ALERTS_RECEIVED = Counter("vigil_alerts_received_total", "Alerts received in webhooks.", ["source", "status"])
MAX_TIMELINE = 50
_ATTEMPTS = 3


@dataclass(frozen=True)
class Touched:
    """An incident a notification opened, updated or resolved."""

    id: str
    status: str
    change: str
    """opened, updated, reopened or resolved."""
    notifications: int
    incident: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The incident as stored."""

    def out(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "change": self.change,
            "notifications": self.notifications,
        }


class AlertIntake:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def accept(
        self, project_id: str, source: Source, notification: WebhookNotification
    ) -> list[Touched]:
        payload = notification.model_dump(mode="json", by_alias=True)
        for alert in notification.alerts:
            ALERTS_RECEIVED.labels(source, alert.status).inc()
        for attempt in range(_ATTEMPTS):
            try:
                return await self._apply(project_id, source, notification, payload)
            except IntegrityError:
                # another notification of the same alert opened its incident at the same moment
                if attempt == _ATTEMPTS - 1:
                    raise TransientError("alert intake contended; retry", retry_after=1.0) from None
        raise AssertionError("unreachable")

    async def _apply(
        self, project_id: str, source: Source, notification: WebhookNotification, payload: dict[str, Any]
    ) -> list[Touched]:
        return await self._store.transaction(partial(_apply, project_id, source, notification, payload))


def _apply(
    project_id: str,
    source: Source,
    notification: WebhookNotification,
    payload: dict[str, Any],
    conn: Connection,
) -> list[Touched]:
    """The notification's transaction, in SQLAlchemy Core (every alert goes through it)."""
    if conn.execute(_PROJECT_EXISTS, {"project_id": project_id}).first() is None:
        raise NotFound(f"no project {project_id!r}", details={"project_id": project_id})
    now, at = time.time(), utcnow()
    keys = [incident_id(project_id, source, alert) for alert in notification.alerts]
    # A write first: it takes SQLite's write lock (and PostgreSQL's row locks) before the
    # incidents are read, so two notifications of one alert count as two, not one.
    conn.execute(_LOCK_INCIDENTS, {"keys": keys})
    stored = dict(iter(conn.execute(_STORED_INCIDENTS, {"keys": keys})))
    bodies: dict[str, dict[str, Any]] = {}
    touched: dict[str, Touched] = {}
    for alert, key in zip(notification.alerts, keys, strict=True):
        labels = {**notification.common_labels, **alert.labels}
        current = bodies.get(key) or stored.get(key)
        if current is None:
            body = opened(key, project_id, source, alert, labels, notification.external_url, now)
            change = "opened"
        else:
            body, change = merged(current, alert, labels, now)
        bodies[key] = body
        touched[key] = Touched(key, body["status"], change, body["notifications"], body)
    new = [
        {
            "id": key,
            "project_id": project_id,
            "status": body["status"],
            "severity": body["severity"],
            "title": body["title"],
            "opened_at": at,
            "updated_at": at,
            "body": body,
        }
        for key, body in bodies.items()
        if key not in stored
    ]
    if new:
        conn.execute(_INCIDENT_INSERT, new)
    changed = [
        {"key": key, "status": body["status"], "severity": body["severity"], "updated_at": at, "body": body}
        for key, body in bodies.items()
        if key in stored
    ]
    if changed:
        conn.execute(_INCIDENT_UPDATE, changed)
    conn.execute(
        _NOTIFICATION_INSERT,
        {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "source": source,
            "received_at": at,
            "alerts": len(notification.alerts),
            "incident_ids": list(touched),
            "payload": payload,
        },
    )
    return list(touched.values())


def opened(
    key: str,
    project_id: str,
    source: Source,
    alert: WebhookAlert,
    labels: dict[str, str],
    external_url: str,
    now: float,
) -> dict[str, Any]:
    steering = AlertLabels.read(labels)
    firing = alert.status == "firing"
    return {
        "id": key,
        "project": project_id,
        "kind": "alert",
        "source": source,
        "title": title_of(alert),
        "severity": str(steering.severity),
        "status": "open" if firing else "resolved",
        "services": services_of(labels),
        "opened_at": now,
        "updated_at": now,
        "resolved_at": None if firing else now,
        "reopened": 0,
        "fingerprint": alert.identity(),
        "labels": labels,
        "tier": steering.tier,
        "runbook_id": steering.runbook_id,
        "escalate_threshold": steering.escalate_threshold,
        "agent_action": steering.agent_action,
        "label_problems": steering.problems,
        "notifications": 1,
        "alert": alert_summary(alert),
        "external_url": external_url,
        "timeline": [{"at": now, "event": "opened" if firing else "resolved", "detail": f"{source} alert"}],
    }


def merged(
    body: dict[str, Any], alert: WebhookAlert, labels: dict[str, str], now: float
) -> tuple[dict[str, Any], str]:
    """The incident after one more notification of its alert, and what changed."""
    out = {**body, "notifications": int(body.get("notifications", 0)) + 1, "updated_at": now}
    out["alert"] = alert_summary(alert)
    severity = AlertLabels.read(labels).severity
    if severity.rank > Severity(body["severity"]).rank:
        out["severity"] = str(severity)
    change = "updated"
    timeline = list(body.get("timeline", []))
    if alert.status == "resolved" and body["status"] == "open":
        out["status"], out["resolved_at"], change = "resolved", now, "resolved"
        timeline.append({"at": now, "event": "resolved", "detail": "the alert resolved"})
    elif alert.status == "firing" and body["status"] == "resolved":
        out["status"], out["resolved_at"], change = "open", None, "reopened"
        out["reopened"] = int(body.get("reopened", 0)) + 1
        timeline.append({"at": now, "event": "reopened", "detail": "the alert fired again"})
    out["timeline"] = timeline[-MAX_TIMELINE:]
    return out, change
