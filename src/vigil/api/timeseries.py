"""A project's activity over time, for the overview's charts: records received, batches
delivered and their delivery latency, what deduplication saved, outputs, dead letters and open
incidents, in equal buckets; and the LLM's token spend per day over the last week."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from vigil.agents.builtin.budget import TokenUsage
from vigil.store.models import Batch, DeadLetter, IncidentRow, Output
from vigil.store.repo import Store

TOKEN_DAYS = 7
"""Token spend is kept per UTC day: the overview shows the last week of it."""


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 1)


class Buckets:
    def __init__(self, start: datetime, size: timedelta, count: int) -> None:
        self.start, self.size, self.count = start, size, count

    def index(self, moment: datetime) -> int | None:
        position = int((_utc(moment) - self.start) / self.size)
        return position if 0 <= position < self.count else None

    def at(self, index: int) -> datetime:
        return self.start + index * self.size


async def project_timeseries(store: Store, project_id: str, hours: int, buckets: int) -> dict[str, Any]:
    end = datetime.now(UTC)
    size = timedelta(hours=hours) / buckets
    grid = Buckets(end - timedelta(hours=hours), size, buckets)
    rows: list[dict[str, Any]] = [
        {
            "at": grid.at(i),
            "records": 0,
            "batches": 0,
            "delivered": 0,
            "deduplicated": 0,
            "outputs": 0,
            "dead_letters": 0,
            "open_incidents": 0,
        }
        for i in range(buckets)
    ]
    latencies: list[list[float]] = [[] for _ in range(buckets)]
    async with store.session() as s:
        batches = await s.execute(
            select(
                Batch.created_at, Batch.updated_at, Batch.status, Batch.record_count, Batch.represented
            ).where(Batch.project_id == project_id, Batch.created_at >= grid.start)
        )
        for created, updated, status, count, represented in batches:
            i = grid.index(created)
            if i is None:
                continue
            row = rows[i]
            row["batches"] += 1
            row["records"] += represented or count
            row["deduplicated"] += max(0, (represented or count) - count)
            if status == "delivered":
                row["delivered"] += 1
                latencies[i].append((_utc(updated) - _utc(created)).total_seconds() * 1000)
        # counted in the database, bucket by bucket, along the (project, time) indexes
        for table, column, key in (
            (Output, Output.received_at, "outputs"),
            (DeadLetter, DeadLetter.created_at, "dead_letters"),
        ):
            for i, row in enumerate(rows):
                row[key] = await s.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.project_id == project_id, column >= grid.at(i), column < grid.at(i) + size)
                )
        still_open = await s.execute(
            select(IncidentRow.opened_at, IncidentRow.updated_at, IncidentRow.status).where(
                IncidentRow.project_id == project_id, IncidentRow.status == "open"
            )
        )
        closed_lately = await s.execute(
            select(IncidentRow.opened_at, IncidentRow.updated_at, IncidentRow.status).where(
                IncidentRow.project_id == project_id,
                IncidentRow.updated_at >= grid.start,
                IncidentRow.status != "open",
            )
        )
        ends = [grid.at(i) + size for i in range(buckets)]
        for opened, updated, status in [*still_open, *closed_lately]:
            closed = None if status == "open" else _utc(updated)
            since = _utc(opened)
            for row, moment in zip(rows, ends, strict=True):
                if since <= moment and (closed is None or closed > moment):
                    row["open_incidents"] += 1
        first_day = (end - timedelta(days=TOKEN_DAYS - 1)).date()
        spent = dict(
            (
                await s.execute(
                    select(TokenUsage.day, func.sum(TokenUsage.tokens))
                    .where(TokenUsage.project_id == project_id, TokenUsage.day >= first_day)
                    .group_by(TokenUsage.day)
                )
            ).all()
        )
    tokens_by_day = [
        {"day": day.isoformat(), "tokens": int(spent.get(day) or 0)}
        for day in (first_day + timedelta(days=n) for n in range(TOKEN_DAYS))
    ]
    for row, values in zip(rows, latencies, strict=True):
        row["latency_ms_p50"] = _percentile(values, 0.5)
        row["latency_ms_p95"] = _percentile(values, 0.95)
    return {
        "start": grid.start,
        "end": end,
        "bucket_s": size.total_seconds(),
        "buckets": rows,
        "tokens_by_day": tokens_by_day,
    }


def timeseries_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["projects"])

    @router.get("/projects/{project_id}/timeseries")
    async def timeseries(
        project_id: str,
        hours: Annotated[int, Query(ge=1, le=24 * 14)] = 24,
        buckets: Annotated[int, Query(ge=1, le=200)] = 24,
    ) -> dict[str, Any]:
        """The project's activity over the last `hours`, in `buckets` equal buckets, oldest first."""
        await store.get_project(project_id)
        return await project_timeseries(store, project_id, hours, buckets)

    return router
