"""What an agent sends back, as it travels the bus and reaches sinks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AgentOutputIn(BaseModel):
    """Body of `POST /internal/agent-output` (the agent protocol's contract)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any]


class OutputEnvelope(BaseModel):
    """An accepted agent output, as published on the outputs stream and delivered to sinks."""

    id: str
    project_id: str
    request_id: str
    pipeline: str | None = None
    batch_records: int | None = None
    received_at: datetime
    payload: dict[str, Any]
