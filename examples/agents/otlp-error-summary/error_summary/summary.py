"""The output this agent sends to Vigil, and the interface every analyzer implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from vigil_sdk.records import service_name

Severity = Literal["critical", "warning", "informational"]


class Finding(BaseModel):
    """What an analyzer concludes about a batch; an AI model's answer must validate against it."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1)
    severity: Severity
    error_type: str = Field(min_length=1)
    root_cause: str = Field(min_length=1)
    remediation: str = Field(min_length=1)
    notify: bool

    @field_validator("severity", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class Summary(Finding):
    """The payload sent back to Vigil: a finding plus facts counted from the batch itself."""

    services: list[str]
    records: int
    analyzer: Literal["rules", "openai"]


class Analyzer(Protocol):
    async def analyze(self, records: list[dict[str, Any]]) -> dict[str, Any]: ...


def services_of(records: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({service_name(record) for record in records})
