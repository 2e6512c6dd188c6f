"""Recent log records for the `query_records` tool, through one small interface: the
recent-records window (`vigil.investigate`) answers it where it is part of this Vigil; without
it, the tool says so instead of answering nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RecordQuery(BaseModel):
    """Which of a project's recent records: every field given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str | None = Field(default=None, max_length=200)
    severity: str | None = Field(default=None, max_length=20, description="This severity or worse.")
    template_id: str | None = Field(default=None, max_length=100)
    trace_id: str | None = Field(default=None, max_length=64)
    grep: str | None = Field(
        default=None, max_length=1000, description="An RE2 pattern searched in the body."
    )
    since_s: float = Field(default=3600.0, gt=0, le=86_400, description="How far back, in seconds.")
    limit: int = Field(default=20, ge=1, le=100)


class RecordsPage(BaseModel):
    """Counts before samples: how many matched, then the newest `records` of them."""

    matched: int
    counts: dict[str, Any] = Field(
        default_factory=dict, description="Matches by service, severity, template."
    )
    records: list[dict[str, Any]]
    window: dict[str, Any] = Field(default_factory=dict, description="What the window holds and since when.")


RecordsReader = Callable[[str, RecordQuery], Awaitable[RecordsPage]]
"""(project id, query) -> page: the recent-records window of the project."""


class RecordsUnavailable(Exception):
    """This Vigil keeps no window of recent records."""


async def no_window(project_id: str, query: RecordQuery) -> RecordsPage:
    raise RecordsUnavailable(
        "this Vigil keeps no window of recent records; use the incidents, their evidence and the templates"
    )
