"""The alert webhooks Vigil takes, and the one shape it makes of them.

Alertmanager's webhook (version 4) and Grafana unified alerting's webhook (version 1) share their
core: `alerts[]`, each with `status`, `labels`, `annotations`, `startsAt`, `endsAt`,
`generatorURL` and `fingerprint`. Fields Vigil does not use are accepted and kept in the stored
notification; the fields it uses are validated.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.detect.signals import Severity

Source = Literal["alertmanager", "grafana"]
Tier = Literal["autonomous", "supervised", "human_only"]
TIERS: tuple[Tier, ...] = ("autonomous", "supervised", "human_only")
DEFAULT_TIER: Tier = "supervised"

_LABEL_TEXT = 8192


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict, max_length=200)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=200)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=_LABEL_TEXT)
    fingerprint: str = Field(default="", max_length=128)

    @field_validator("labels", "annotations")
    @classmethod
    def _bounded(cls, values: dict[str, str]) -> dict[str, str]:
        for key, value in values.items():
            if len(key) > 256 or len(value) > _LABEL_TEXT:
                raise ValueError(f"label or annotation {key[:40]!r} is too long")
        return values

    def identity(self) -> str:
        """The alert's fingerprint as its sender gave it, else one of its labels."""
        if self.fingerprint:
            return self.fingerprint
        text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(self.labels.items()))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def storable(value: Any) -> Any:
    """`value` as it can be stored and sent on: JSON may carry lone surrogate escapes (they become
    U+FFFD) and integers past 64 bits (they become strings)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


class WebhookNotification(BaseModel):
    """What both senders POST; `version` tells them apart ("4" Alertmanager, "1" Grafana)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return storable(data)

    version: str = Field(default="4", max_length=16)
    status: Literal["firing", "resolved"] | None = None
    receiver: str = Field(default="", max_length=512)
    group_key: str = Field(default="", alias="groupKey", max_length=_LABEL_TEXT)
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    external_url: str = Field(default="", alias="externalURL", max_length=_LABEL_TEXT)
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=10_000)


class AlertLabels(BaseModel):
    """The labels that steer the workflow, read from an alert (its own first, then the group's)."""

    tier: Tier = DEFAULT_TIER
    severity: Severity = Severity.WARNING
    runbook_id: str | None = None
    escalate_threshold: float | None = None
    agent_action: str | None = None
    problems: list[str] = []
    """Labels that were present but not understood; the safe reading was taken instead."""

    @classmethod
    def read(cls, labels: dict[str, str]) -> AlertLabels:
        problems: list[str] = []
        tier = labels.get("tier", DEFAULT_TIER).strip().lower()
        if tier not in TIERS:
            problems.append(f"tier {tier!r} is not one of {', '.join(TIERS)}: treated as human_only")
            tier = "human_only"
        threshold: float | None = None
        raw = labels.get("escalate_threshold")
        if raw is not None:
            try:
                threshold = float(raw)
                if not 0 <= threshold <= 1:
                    raise ValueError
            except ValueError:
                problems.append(f"escalate_threshold {raw!r} is not a number from 0 to 1: ignored")
                threshold = None
        return cls(
            tier=tier,
            severity=severity_of(labels.get("severity", "")),
            runbook_id=labels.get("runbook_id") or None,
            escalate_threshold=threshold,
            agent_action=labels.get("agent_action") or None,
            problems=problems,
        )


_SEVERITIES = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "high": Severity.CRITICAL,
    "error": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
    "emergency": Severity.CRITICAL,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "medium": Severity.WARNING,
    "major": Severity.WARNING,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "low": Severity.INFO,
    "minor": Severity.INFO,
    "none": Severity.INFO,
}


def severity_of(label: str) -> Severity:
    """An alert's `severity` label in Vigil's three levels (warning when absent or unknown)."""
    return _SEVERITIES.get(label.strip().lower(), Severity.WARNING)


def incident_id(project_id: str, source: Source, alert: WebhookAlert) -> str:
    """One incident per alert and firing episode: the same alert firing again after it resolved
    (a new `startsAt`) is a new incident; repeated notifications of one episode are the same."""
    key = f"{project_id}\x00{source}\x00{alert.identity()}\x00{alert.starts_at.isoformat()}"
    return "al-" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def title_of(alert: WebhookAlert) -> str:
    name = alert.labels.get("alertname", "alert")
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    return f"{name}: {summary}"[:300] if summary else name[:300]


def services_of(labels: dict[str, str]) -> list[str]:
    for key in ("service", "service_name", "service.name", "app", "job", "container", "deployment"):
        if labels.get(key):
            return [labels[key]]
    return []


def alert_summary(alert: WebhookAlert) -> dict[str, Any]:
    return {
        "fingerprint": alert.identity(),
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at and alert.ends_at.year > 1 else None,
        "generator_url": alert.generator_url,
    }
