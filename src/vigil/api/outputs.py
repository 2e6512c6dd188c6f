"""What the agents answered (outputs), the batches sent to them, and a project's counts of both."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from vigil.api.schemas import BatchOut, OutputOut
from vigil.errors import NotFound
from vigil.store.models import Batch, IncidentRow
from vigil.store.repo import Store


def _batch_out(row: Batch, with_records: bool) -> BatchOut:
    return BatchOut(
        request_id=row.request_id,
        pipeline=row.pipeline,
        record_count=row.record_count,
        represented=row.represented or row.record_count,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        records=row.records if with_records else None,
    )


def outputs_router(store: Store) -> APIRouter:
    router = APIRouter()

    @router.get("/projects/{project_id}/outputs", response_model=list[OutputOut], tags=["outputs"])
    async def list_outputs(
        project_id: str,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        request_id: str | None = None,
        before: Annotated[
            datetime | None, Query(description="Page back: outputs received before this time.")
        ] = None,
        before_id: Annotated[
            str | None, Query(max_length=64, description="With `before`: the id of the last output seen.")
        ] = None,
        batch: Annotated[bool, Query(description="With each output's batch and its records.")] = True,
    ) -> Any:
        await store.get_project(project_id)
        result = []
        rows = await store.list_outputs(
            project_id, limit=limit, request_id=request_id, before=before, before_id=before_id
        )
        for row in rows:
            found = await store.get_batch(row.request_id) if batch else None
            result.append(
                OutputOut(
                    id=row.id,
                    project_id=row.project_id,
                    request_id=row.request_id,
                    pipeline=row.pipeline,
                    payload=row.payload,
                    received_at=row.received_at,
                    batch=_batch_out(found, with_records=True) if found is not None else None,
                )
            )
        return result

    @router.get("/projects/{project_id}/batches", response_model=list[BatchOut], tags=["batches"])
    async def list_batches(
        project_id: str,
        status: Annotated[str | None, Query(pattern="^(pending|retrying|delivered|dead)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        records: bool = False,
    ) -> Any:
        await store.get_project(project_id)
        return [
            _batch_out(row, records)
            for row in await store.list_batches(project_id, status=status, limit=limit)
        ]

    @router.get("/projects/{project_id}/batches/{request_id}", response_model=BatchOut, tags=["batches"])
    async def get_batch(project_id: str, request_id: str) -> Any:
        row = await store.get_batch(request_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"no batch {request_id!r} in project {project_id!r}")
        return _batch_out(row, with_records=True)

    @router.get("/projects/{project_id}/stats", tags=["projects"])
    async def stats(project_id: str) -> dict[str, Any]:
        await store.get_project(project_id)
        async with store.session() as s:
            open_incidents = await s.scalar(
                select(func.count())
                .select_from(IncidentRow)
                .where(IncidentRow.project_id == project_id, IncidentRow.status == "open")
            )
        return {**await store.counts(project_id), "open_incidents": open_incidents or 0}

    return router
