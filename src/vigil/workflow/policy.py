"""A project's workflow policy: which incidents enter the workflow, how approvals behave, what
actions may touch, and where verification looks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.actions.policy import ActionPolicy
from vigil.alerts.models import Tier
from vigil.detect.signals import Severity
from vigil.tickets.specs import TicketSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectedPolicy(_Strict):
    """The detector's incidents enter the workflow when this asks for it."""

    enabled: bool = False
    min_severity: Severity = Severity.CRITICAL
    signal_kinds: list[str] = Field(default_factory=list, max_length=20, description="Empty: any kind.")
    tier: Tier = Field(default="supervised", description="Detected incidents carry no tier label: this one.")


class WorkflowPolicy(_Strict):
    detected: DetectedPolicy = Field(default_factory=DetectedPolicy)
    alerts: bool = Field(default=True, description="Firing alerts enter the workflow.")
    proposals: bool = Field(
        default=True, description="Outside agents (MCP) may propose runbooks; each waits for approval."
    )
    approval_expiry_s: float = Field(default=1800.0, gt=0, le=7 * 86_400)
    escalate_threshold: float = Field(
        default=0.0, ge=0, le=1, description="An analysis less confident than this waits for a person."
    )
    actions: ActionPolicy = Field(default_factory=ActionPolicy)
    tickets: TicketSpec | None = Field(
        default=None, description="Where each workflow's ticket is opened, commented and closed."
    )
    prometheus_url: str | None = Field(
        default=None, max_length=2048, description="Where runbooks' `verify.promql` is evaluated."
    )
    analysis_engine: Literal["rules", "llm"] | None = Field(
        default=None,
        description="What analyses this project's incidents after the investigation: the rules engine, "
        "or the configured model investigating with the same tools (the rules answering when it cannot). "
        "Unset: the settings' `workflow.analysis_engine`.",
    )
