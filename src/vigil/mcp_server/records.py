"""Recent log records for the `query_records` tool, through one small interface: the
recent-records window (`vigil.investigate`: this process's router, or the routers of others over
the bus) answers it; without one, the tool says so instead of answering nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vigil.investigate.records import RecordQuery as WindowQuery
from vigil.investigate.remote import RecordsWindow


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


def from_window(recent: RecordsWindow) -> RecordsReader:
    """A reader of the recent-records window (redacted, counts before samples)."""

    async def read(project_id: str, query: RecordQuery) -> RecordsPage:
        asked = WindowQuery.model_validate(
            {
                "service": query.service,
                "since": datetime.now(UTC) - timedelta(seconds=query.since_s),
                "severity": query.severity,
                "template_id": query.template_id,
                "trace_id": query.trace_id,
                "grep": query.grep,
                "limit": query.limit,
            }
        )
        answer = await recent.query(project_id, asked)
        counts = answer.counts.model_dump(mode="json", exclude={"matched"})
        return RecordsPage(
            matched=answer.counts.matched,
            counts={**counts, "scanned": answer.scanned, "scan_stopped_early": answer.truncated},
            records=[dict(record) for record in answer.records],
            window=answer.window.model_dump(mode="json"),
        )

    return read
