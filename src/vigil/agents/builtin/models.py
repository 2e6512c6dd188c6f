"""What built-in agents read and write: evidence in, an analysis (the agent protocol's output shape) out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "warning", "informational"]


class EvidenceItem(BaseModel):
    """One distinct problem in a batch: a log template with how often it occurred.

    Samples are already redacted: nothing in evidence may carry a secret.
    """

    model_config = ConfigDict(extra="forbid")

    template_id: str
    template: str
    service: str
    count: int = Field(ge=1)
    first_seen: datetime
    last_seen: datetime
    severity_number: int = Field(ge=0, le=24)
    samples: list[str] = Field(default_factory=list, max_length=5)
    attributes: dict[str, str] = Field(default_factory=dict, description="A few telling attributes.")
    trace_ids: list[str] = Field(default_factory=list, max_length=5)


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    request_id: str
    items: list[EvidenceItem]

    @property
    def services(self) -> list[str]:
        return sorted({item.service for item in self.items})

    @property
    def records(self) -> int:
        return sum(item.count for item in self.items)


class Citation(BaseModel):
    """Why a conclusion was drawn: which template, how many times, in which service. Every
    citation names something Vigil stores and can show: a template (of the records it cites)."""

    kind: Literal["template"] = "template"
    template_id: str
    template: str
    service: str
    count: int
    reason: str


class Analysis(BaseModel):
    """The output the agent protocol's example agent gives (GlassFlow's AI runtime), plus the evidence behind it."""

    summary: str
    severity: Severity
    error_type: str = Field(description="CamelCase class such as ConnectionPoolExhausted, or Unknown.")
    root_cause: str
    remediation: list[str]
    notify: bool
    confidence: float = Field(ge=0, le=1)
    services: list[str]
    records: int
    evidence: list[Citation]
    engine: str
    known: bool = Field(description="False when the engine could not explain the evidence.")
    runbook_id: str | None = Field(
        default=None, description="The configured runbook that fits the cause, when one does."
    )
    tokens: int = 0
    fallback_reason: str | None = Field(
        default=None, description="Why the configured engine's answer was replaced by the fallback's."
    )
