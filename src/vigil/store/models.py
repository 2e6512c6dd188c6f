"""Tables. Portable SQL only: the same schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Pipeline(Base):
    __tablename__ = "pipelines"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Sink(Base):
    __tablename__ = "sinks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Batch(Base):
    """A batch handed to an agent; its id is the X-Request-ID the agent answers with."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_project_created", "project_id", "created_at"),)

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    pipeline: Mapped[str] = mapped_column(String(63))
    record_count: Mapped[int] = mapped_column(Integer)
    represented: Mapped[int] = mapped_column(Integer, default=0)
    """How many received records the batch stands for (more than record_count when deduplicated)."""
    records: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Output(Base):
    __tablename__ = "outputs"
    __table_args__ = (
        UniqueConstraint("project_id", "idempotency_key", name="uq_outputs_idempotency"),
        Index("ix_outputs_project_received", "project_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    pipeline: Mapped[str | None] = mapped_column(String(63))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]


class DeadLetter(Base):
    """Work that exhausted its retries or was refused for good, kept for inspection and replay."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_project_created", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(63))
    ref: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]


class TemplateState(Base):
    """A project's template miner, saved so template ids survive restarts."""

    __tablename__ = "template_states"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class IncidentRow(Base):
    """An incident as the detector last saw it; `body` is the whole incident (signals, timeline)."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_project_updated", "project_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    body: Mapped[dict[str, Any]]


class DetectorState(Base):
    __tablename__ = "detector_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class IncidentReplay(Base):
    """One `vigil replay` of an incident's archived requests, and whether its failure reproduced.

    Kept apart from `incidents`, whose body the detector rewrites whole on every update.
    """

    __tablename__ = "incident_replays"
    __table_args__ = (Index("ix_incident_replays_incident_at", "project_id", "incident_id", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    incident_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    target: Mapped[str] = mapped_column(Text)
    reproduced: Mapped[bool]
    attempted: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    """Replayed requests that failed again (the way their signal expected)."""
    results: Mapped[list[Any]]


class AlertNotification(Base):
    """An alert webhook's body as it came (Alertmanager or Grafana), kept for the audit trail."""

    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_project_received", "project_id", "received_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    alerts: Mapped[int] = mapped_column(Integer)
    incident_ids: Mapped[list[Any]]
    payload: Mapped[dict[str, Any]]


class RunbookRow(Base):
    """A project's runbook, set through the API or loaded from the runbooks folder."""

    __tablename__ = "runbooks"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    spec: Mapped[dict[str, Any]]
    origin: Mapped[str] = mapped_column(String(16))
    """api, or file (loaded from VIGIL_RUNBOOKS_DIR at start)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditEntry(Base):
    """Append-only: every change and decision, who made it, when and why."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_project_at", "project_id", "at"),
        Index("ix_audit_log_project_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    """admin, a project key's name, the workflow, a person (an approval's `by`)."""
    kind: Mapped[str] = mapped_column(String(64))
    """config.change, workflow.step, model.call, action, approval, ..."""
    subject: Mapped[str] = mapped_column(String(200))
    """What it is about: a runbook id, a workflow id, a pipeline name."""
    detail: Mapped[dict[str, Any]]


class WorkflowRow(Base):
    """One incident's remediation workflow as people see it: its state and its steps so far."""

    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflows_project_updated", "project_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(24))
    tier: Mapped[str] = mapped_column(String(16))
    runbook_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    body: Mapped[dict[str, Any]]
    """Steps with their status and timings, the analysis, the ticket, the outcome."""


class WorkflowEvent(Base):
    """What a workflow did, in order; the id is the live stream's event id (resumable)."""

    __tablename__ = "workflow_events"
    __table_args__ = (Index("ix_workflow_events_project_id", "project_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36))
    workflow_id: Mapped[str] = mapped_column(String(100), index=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime]
    step: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    summary: Mapped[dict[str, Any]]


class ApprovalRow(Base):
    """A person's go-ahead a workflow waits for: answered once, and never lost."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_project_status", "project_id", "status"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    workflow_id: Mapped[str] = mapped_column(String(100), index=True)
    incident_id: Mapped[str] = mapped_column(String(64))
    runbook_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    """pending, approved, rejected or expired."""
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    plan: Mapped[dict[str, Any]]
    """What would be done: the runbook's steps as dry runs, and why it is asked."""


class ProjectPolicy(Base):
    """A project's workflow policy: which incidents enter the workflow, what actions may touch,
    where tickets go."""

    __tablename__ = "project_policies"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    spec: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class CaseRow(Base):
    """A past case to learn from: what a workflow knew of its incident (its features) and what it
    chose. Its outcome and reward are read from the workflow, its approval and its feedback."""

    __tablename__ = "learning_cases"
    __table_args__ = (Index("ix_learning_cases_project_created", "project_id", "created_at"),)

    workflow_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(36))
    incident_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    features: Mapped[dict[str, Any]]
    """Templates, signal kinds, services, alert labels, error types and text tokens."""
    runbook_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    hypothesis: Mapped[str] = mapped_column(Text)


class FeedbackRow(Base):
    """A person's judgement of an analysis, a plan or a workflow."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_project_id", "project_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36))
    target_id: Mapped[str] = mapped_column(String(200))
    target_kind: Mapped[str] = mapped_column(String(16))
    """analysis, plan or workflow."""
    workflow_id: Mapped[str] = mapped_column(String(100), index=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    helpful: Mapped[bool | None] = mapped_column(nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
