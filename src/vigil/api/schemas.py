"""Response bodies of the management API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ProjectOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class ApiKeyOut(BaseModel):
    id: str
    project_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    key: str
    """Shown once: only its hash is stored."""


class KeyIn(BaseModel):
    name: str = "default"


class PipelineOut(BaseModel):
    project_id: str
    name: str
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SinkOut(BaseModel):
    id: str
    project_id: str
    type: str
    name: str | None
    spec: dict[str, Any]
    created_at: datetime


class BatchOut(BaseModel):
    request_id: str
    pipeline: str
    record_count: int
    represented: int
    """Received records the batch stands for: more than record_count when deduplicated."""
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    records: list[Any] | None = None


class OutputOut(BaseModel):
    id: str
    project_id: str
    request_id: str
    pipeline: str | None
    payload: dict[str, Any]
    received_at: datetime
    batch: BatchOut | None


class DeadLetterOut(BaseModel):
    id: str
    kind: str
    target: str
    ref: str
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None


class ReplayOut(BaseModel):
    replayed: list[str]
