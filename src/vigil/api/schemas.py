"""Response bodies of the management API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.specs import Label


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time Vigil stores is UTC, and RFC 3339 wants the offset.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]


class ProjectOut(BaseModel):
    id: str
    name: str
    created_at: Timestamp


class ApiKeyOut(BaseModel):
    id: str
    project_id: str
    name: str
    prefix: str
    created_at: Timestamp
    revoked_at: Timestamp | None
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    key: str
    """Shown once: only its hash is stored."""


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Label = "default"


STORED_INVALID = "stored under older rules, this spec is no longer valid and does not run; save it again"


class PipelineOut(BaseModel):
    project_id: str
    name: str
    spec: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp
    problem: str | None = None
    """Set when the stored spec no longer validates (it does not run): why, and what to do."""


class SinkOut(BaseModel):
    id: str
    project_id: str
    type: str
    name: str | None
    spec: dict[str, Any]
    created_at: Timestamp
    problem: str | None = None
    """Set when the stored spec no longer validates (it does not run): why, and what to do."""


class BatchOut(BaseModel):
    request_id: str
    pipeline: str
    record_count: int
    represented: int
    """Received records the batch stands for: more than record_count when deduplicated."""
    status: str
    attempts: int
    last_error: str | None
    created_at: Timestamp
    updated_at: Timestamp
    records: list[Any] | None = None


class OutputOut(BaseModel):
    id: str
    project_id: str
    request_id: str
    pipeline: str | None
    payload: dict[str, Any]
    received_at: Timestamp
    batch: BatchOut | None


class DeadLetterOut(BaseModel):
    id: str
    kind: str
    target: str
    ref: str
    error: str
    attempts: int
    created_at: Timestamp
    replayed_at: Timestamp | None


class ReplayOut(BaseModel):
    replayed: list[str]


# --- incident replays -----------------------------------------------------------------------------

ReplayOutcome = Literal["reproduced", "not_reproduced", "unreachable", "skipped"]


class ReplayRequestResult(BaseModel):
    """What one archived request did when it was sent again."""

    model_config = ConfigDict(extra="forbid")

    signal: Annotated[str, Field(max_length=64)]
    """The kind of the signal whose evidence held the request (error_rate_spike, slow_endpoint, ...)."""
    fingerprint: Annotated[str | None, Field(max_length=64)] = None
    method: Annotated[str, Field(min_length=1, max_length=16)]
    target: Annotated[str, Field(min_length=1, max_length=8192)]
    """Path and query as sent."""
    expected: Annotated[str, Field(max_length=200)] = ""
    """What counted as the failure again, e.g. `5xx or 503`, `>= 1000 ms`."""
    status: Annotated[int | None, Field(ge=100, le=599)] = None
    duration_ms: Annotated[float | None, Field(ge=0)] = None
    error: Annotated[str | None, Field(max_length=500)] = None
    outcome: ReplayOutcome


class IncidentReplayIn(BaseModel):
    """A replay's result, as `vigil replay` posts it."""

    model_config = ConfigDict(extra="forbid")

    target: Annotated[str, Field(min_length=1, max_length=2048)]
    """Where the requests were sent (scheme, host and port; any path is a prefix)."""
    reproduced: bool
    """Whether the failure reproduced: the incident is confirmed."""
    attempted: Annotated[int, Field(ge=0, le=10_000)]
    """Requests sent (unreachable and skipped ones are not)."""
    failed: Annotated[int, Field(ge=0, le=10_000)]
    """Requests among them that failed again the way their signal expected."""
    results: Annotated[list[ReplayRequestResult], Field(max_length=1000)] = []

    @field_validator("target")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.failed > self.attempted:
            raise ValueError("failed cannot exceed attempted")
        if self.reproduced and not self.failed:
            raise ValueError("a reproduced failure needs at least one failed request")
        return self


class IncidentReplayOut(BaseModel):
    id: str
    incident_id: str
    at: Timestamp
    target: str
    reproduced: bool
    attempted: int
    failed: int
    results: list[ReplayRequestResult]


class Confirmation(BaseModel):
    """An incident's latest replay, shown with the incident as `confirmation`."""

    confirmed: bool
    at: Timestamp
    target: str
    attempted: int
    failed: int
    replay_id: str
