"""What a query of the recent records asks and what it answers: counts first, then samples."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.pipeline.user_regex import UserRegex, check_pattern
from vigil.records import FlatRecord
from vigil.severity import severity_from_text

MAX_QUERY_LIMIT = 1_000


class RecordQuery(BaseModel):
    """Filters of the recent records; every one optional. `severity` is the least severity kept
    (a name such as `error` or a number 1-24); `grep` an RE2 pattern searched in the redacted body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str | None = Field(default=None, max_length=256)
    since: datetime | None = None
    until: datetime | None = None
    severity: int | None = Field(default=None, ge=1, le=24)
    template_id: str | None = Field(default=None, max_length=64)
    trace_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    grep: str | None = Field(default=None, min_length=1, max_length=1_000)
    limit: int = Field(default=100, ge=0, le=MAX_QUERY_LIMIT)

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.isdigit():
            number = severity_from_text(value)
            if not number:
                raise ValueError(
                    f"unknown severity {value!r}: use trace, debug, info, warn, error, fatal or 1-24"
                )
            return number
        return value

    @field_validator("grep")
    @classmethod
    def _grep(cls, value: str | None) -> str | None:
        if value is not None:
            check_pattern(value)
        return value

    def pattern(self) -> UserRegex | None:
        return UserRegex(self.grep) if self.grep else None


class Counts(BaseModel):
    """How many records matched, by service, severity and template (the most frequent first)."""

    matched: int = 0
    by_service: dict[str, int] = Field(default_factory=dict)
    by_severity: dict[str, int] = Field(default_factory=dict)
    by_template: dict[str, int] = Field(default_factory=dict)
    templates: dict[str, str] = Field(default_factory=dict, description="The text of each template counted.")


class WindowState(BaseModel):
    """What the window holds for a project."""

    messages: int
    records: int
    bytes: int
    oldest: datetime | None
    newest: datetime | None
    evicted_records: int
    skipped_records: int = Field(
        default=0, description="Records not kept because the project sent over the window's rate."
    )
    window_s: float


class RecordsAnswer(BaseModel):
    counts: Counts
    scanned: int = Field(description="Records looked at.")
    truncated: bool = Field(description="The scan stopped at its bound before the window's oldest record.")
    records: list[FlatRecord] = Field(description="Newest first, redacted, each with `record_id`.")
    window: WindowState


def record_id(project_id: str, record: FlatRecord) -> str:
    """A stable id of a (redacted) record: the same record gets the same id in every query."""
    key = orjson.dumps(
        [
            project_id,
            record.get("timestamp"),
            (record.get("resourceAttributes") or {}).get("service.name"),
            record.get("body"),
            record.get("traceId"),
            record.get("spanId"),
            record.get("severityNumber"),
        ]
    )
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def top(counts: dict[str, int], n: int = 20) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n])
