"""The live view's stream: a project's batches (with their records), agent outputs and dead
letters as they are stored, as server-sent events. Read from the store, which every process
writes, so it shows the work of every replica."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
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
    """Where a stream is: the newest change of each kind it has sent. Sent as each event's id, so
    a browser that reconnects (with `Last-Event-ID`) goes on where it was."""

    def __init__(self, since: datetime) -> None:
        self.batches = self.outputs = self.dead_letters = since

    @property
    def id(self) -> str:
        return "|".join(_utc(m).isoformat() for m in (self.batches, self.outputs, self.dead_letters))

    @classmethod
    def resumed(cls, last_event_id: str | None, since: datetime) -> LiveCursor:
        cursor = cls(since)
        parts = (last_event_id or "").split("|")
        if len(parts) == 3:
            with contextlib.suppress(ValueError):  # not one of ours: from `since`
                cursor.batches, cursor.outputs, cursor.dead_letters = (
                    datetime.fromisoformat(p) for p in parts
                )
        return cursor

    async def poll(self, store: Store, project_id: str) -> list[tuple[str, dict[str, Any], str]]:
        """What changed since the cursor, each with the cursor just past it."""
        found: list[tuple[str, dict[str, Any], str]] = []
        async with store.session() as s:
            batches = await s.scalars(
                select(Batch)
                .where(Batch.project_id == project_id, Batch.updated_at > self.batches)
                .order_by(Batch.updated_at)
                .limit(PER_POLL)
            )
            for batch in batches:
                self.batches = batch.updated_at
                found.append(("batch", _batch_event(batch), self.id))
            outputs = await s.scalars(
                select(Output)
                .where(Output.project_id == project_id, Output.received_at > self.outputs)
                .order_by(Output.received_at)
                .limit(PER_POLL)
            )
            for output in outputs:
                self.outputs = output.received_at
                found.append(("output", _output_event(output), self.id))
            letters = await s.scalars(
                select(DeadLetter)
                .where(DeadLetter.project_id == project_id, DeadLetter.created_at > self.dead_letters)
                .order_by(DeadLetter.created_at)
                .limit(PER_POLL)
            )
            for letter in letters:
                self.dead_letters = letter.created_at
                found.append(("dead_letter", _dead_letter_event(letter), self.id))
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
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=120)] = None,
    ) -> EventSourceResponse:
        """Server-sent events: `batch` (created or its status changed, with its first records),
        `output` and `dead_letter`, as they are stored."""
        await store.get_project(project_id)
        cursor = LiveCursor.resumed(last_event_id, _utc(since) if since is not None else datetime.now(UTC))

        async def events() -> AsyncIterator[dict[str, Any]]:
            while not await request.is_disconnected():
                for kind, data, after in await cursor.poll(store, project_id):
                    yield {"event": kind, "id": after, "data": orjson.dumps(data).decode()}
                await asyncio.sleep(LIVE_POLL_S)

        return EventSourceResponse(events(), ping=15)

    return router
