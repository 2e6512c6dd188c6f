"""The live view's stream: a project's batches (with their records), agent outputs and dead
letters as they are stored, as server-sent events. Read from the store, which every process
writes, so it shows the work of every replica."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from vigil.store.models import Batch, DeadLetter, Output
from vigil.store.repo import Store

LIVE_POLL_S = 0.5
PER_POLL = 200
RECORDS_SHOWN = 20


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _batch_event(row: Batch) -> dict[str, Any]:
    return {
        "request_id": row.request_id,
        "pipeline": row.pipeline,
        "status": row.status,
        "record_count": row.record_count,
        "represented": row.represented or row.record_count,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": _utc(row.created_at),
        "updated_at": _utc(row.updated_at),
        "records": list(row.records or [])[:RECORDS_SHOWN],
    }


def _output_event(row: Output) -> dict[str, Any]:
    return {
        "id": row.id,
        "request_id": row.request_id,
        "pipeline": row.pipeline,
        "payload": row.payload,
        "received_at": _utc(row.received_at),
    }


def _dead_letter_event(row: DeadLetter) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "target": row.target,
        "ref": row.ref,
        "error": row.error,
        "attempts": row.attempts,
        "created_at": _utc(row.created_at),
    }


class LiveCursor:
    """Where a stream is: the newest change of each kind it has sent."""

    def __init__(self, since: datetime) -> None:
        self.batches = self.outputs = self.dead_letters = since

    async def poll(self, store: Store, project_id: str) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = []
        async with store.session() as s:
            batches = await s.scalars(
                select(Batch)
                .where(Batch.project_id == project_id, Batch.updated_at > self.batches)
                .order_by(Batch.updated_at)
                .limit(PER_POLL)
            )
            for batch in batches:
                self.batches = batch.updated_at
                found.append(("batch", _batch_event(batch)))
            outputs = await s.scalars(
                select(Output)
                .where(Output.project_id == project_id, Output.received_at > self.outputs)
                .order_by(Output.received_at)
                .limit(PER_POLL)
            )
            for output in outputs:
                self.outputs = output.received_at
                found.append(("output", _output_event(output)))
            letters = await s.scalars(
                select(DeadLetter)
                .where(DeadLetter.project_id == project_id, DeadLetter.created_at > self.dead_letters)
                .order_by(DeadLetter.created_at)
                .limit(PER_POLL)
            )
            for letter in letters:
                self.dead_letters = letter.created_at
                found.append(("dead_letter", _dead_letter_event(letter)))
        return found


def live_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["live"])

    # left out of the OpenAPI document: a stream without an end, which a generated client (or a
    # property-based run of the document) would wait on forever; docs/ui.md describes it
    @router.get("/projects/{project_id}/live", include_in_schema=False)
    async def live(
        request: Request,
        project_id: str,
        since: Annotated[
            datetime | None, Query(description="Send what changed after this time (default: now).")
        ] = None,
    ) -> EventSourceResponse:
        """Server-sent events: `batch` (created or its status changed, with its first records),
        `output` and `dead_letter`, as they are stored."""
        await store.get_project(project_id)
        cursor = LiveCursor(_utc(since) if since is not None else datetime.now(UTC))

        async def events() -> AsyncIterator[dict[str, Any]]:
            while not await request.is_disconnected():
                for kind, data in await cursor.poll(store, project_id):
                    yield {"event": kind, "data": orjson.dumps(data).decode()}
                await asyncio.sleep(LIVE_POLL_S)

        return EventSourceResponse(events(), ping=15)

    return router
