"""Workflows, approvals (contract), live streams (contract) and projects' workflow policies.

The streams are server-sent events read from the workflow events table, which every process
writes, so they work whichever process runs the workflow; `Last-Event-ID` resumes a stream where
it broke off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from vigil.api.errors import error_responses
from vigil.bus.client import Bus
from vigil.bus.topology import workflow_events_subject
from vigil.errors import PayloadTooLarge, UnsupportedMediaType
from vigil.learning.store import feedback_targets
from vigil.records import FlatRecord
from vigil.store.models import ApprovalRow, WorkflowEvent, WorkflowRow
from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow import investigation, pasted
from vigil.workflow.approval_store import aware
from vigil.workflow.engine import WorkflowEngine, WorkflowWaker
from vigil.workflow.policy import WorkflowPolicy
from vigil.workflow.store import WorkflowStore

STREAM_POLL_S = 0.25
FINISHED = frozenset(
    {"resolved", "escalated", "rolled_back", "recorded", "dry_run", "failed", investigation.STATUS}
)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=200, description="Who answers: a name or an email.")
    reason: str | None = Field(default=None, max_length=4000)


def workflow_out(row: WorkflowRow, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "project_id": row.project_id,
        "incident_id": row.incident_id,
        "status": row.status,
        "tier": row.tier,
        "runbook_id": row.runbook_id,
        "started_at": aware(row.started_at),
        "updated_at": aware(row.updated_at),
        "title": row.body.get("title", ""),
        "outcome": row.body.get("outcome"),
        **feedback_targets(row),
    }
    if full:
        out |= {
            key: row.body.get(key)
            for key in ("steps", "context", "analysis", "plan", "approval_id", "runbook", "ticket")
        }
    return out


def approval_out(row: ApprovalRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "workflow_id": row.workflow_id,
        "incident_id": row.incident_id,
        "runbook_id": row.runbook_id,
        "status": row.status,
        "requested_at": aware(row.requested_at),
        "expires_at": aware(row.expires_at),
        "decided_at": aware(row.decided_at) if row.decided_at else None,
        "decided_by": row.decided_by,
        "reason": row.reason,
        "plan": row.plan,
    }


def event_out(event: WorkflowEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "workflow_id": event.workflow_id,
        "incident_id": event.incident_id,
        "at": aware(event.at).isoformat(),
        "step": event.step,
        "status": event.status,
        "summary": event.summary,
    }


async def _pasted_text(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "text/plain":
        raise UnsupportedMediaType(f"send pasted log lines as text/plain, not {kind or 'no content type'}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > pasted.MAX_BYTES:
            raise PayloadTooLarge(f"pasted logs are limited to {pasted.MAX_BYTES:,} bytes")
        chunks.append(chunk)
    return pasted.decode(b"".join(chunks))


def _prepared(text: str) -> tuple[list[FlatRecord], int]:
    """Parsed and redacted records, and the number of lines: nothing else sees the raw text."""
    return pasted.prepare(pasted.parse(text)), len(text.splitlines())


def workflows_router(
    store: Store, waker: WorkflowWaker | None, bus: Bus | None = None, engine: WorkflowEngine | None = None
) -> APIRouter:
    router = APIRouter()
    workflows = WorkflowStore(store)
    audit = WorkflowRepo(store)

    @router.post(
        "/projects/{project_id}/workflows",
        tags=["workflows"],
        status_code=202,
        responses=error_responses(415),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/plain": {"schema": {"type": "string", "description": "Log lines."}}},
            }
        },
    )
    async def investigate_pasted(project_id: str, request: Request) -> dict[str, str]:
        """Pasted logs (a `text/plain` body of log lines): an investigation-only workflow that
        ends with the analysis and a recommended runbook, never an action. Read and stream it
        like any workflow. Empty or binary bodies are a 422, other content types a 415, more than
        4 MiB a 413. Lines are redacted before anything analyses or stores them."""
        await store.get_project(project_id)
        text = await _pasted_text(request)
        records, lines = await asyncio.to_thread(_prepared, text)
        workflow_id = await investigation.open_investigation(store, project_id, records, lines)
        await audit.audit(project_id, "admin", "workflow.pasted", workflow_id, {"lines": lines})
        if engine is not None:
            await engine.start_investigation(workflow_id)
        else:
            investigation.run_in_background(store, bus, workflow_id)
        return {"workflow_id": workflow_id}

    @router.get("/projects/{project_id}/workflows", tags=["workflows"])
    async def list_workflows(
        project_id: str,
        status: Annotated[str | None, Query(max_length=24)] = None,
        incident_id: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        await store.get_project(project_id)
        rows = await workflows.list_workflows(project_id, status=status, incident_id=incident_id, limit=limit)
        return [workflow_out(row, full=False) for row in rows]

    @router.get("/projects/{project_id}/workflows/{workflow_id}", tags=["workflows"])
    async def get_workflow(project_id: str, workflow_id: str) -> dict[str, Any]:
        """A workflow with its steps (status, timings, summaries), analysis, plan and outcome."""
        return workflow_out(await workflows.get_workflow(project_id, workflow_id), full=True)

    async def stream(
        request: Request,
        project_id: str,
        last_event_id: str | None,
        *,
        workflow_id: str | None,
        incident_id: str | None,
    ) -> EventSourceResponse:
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

        async def events() -> AsyncIterator[dict[str, Any]]:
            nonlocal after
            wake = asyncio.Event()
            subscription = None
            if bus is not None and bus.connected:

                async def woken(_: Any) -> None:
                    wake.set()

                subscription = await bus.nc.subscribe(workflow_events_subject(project_id), cb=woken)
            try:
                while not await request.is_disconnected():
                    wake.clear()
                    found = await workflows.events(
                        project_id, workflow_id=workflow_id, incident_id=incident_id, after_id=after
                    )
                    for event in found:
                        after = event.id
                        data = orjson.dumps(event_out(event)).decode()
                        yield {"id": str(event.id), "event": "step", "data": data}
                        if workflow_id is not None and event.step == "finish":
                            return
                    # woken by the bus when a step is recorded; polled too, should a wake-up be lost
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), STREAM_POLL_S if subscription is None else 1.0)
            finally:
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()

        return EventSourceResponse(events(), ping=15)

    @router.get("/projects/{project_id}/workflows/{workflow_id}/stream", tags=["workflows"])
    async def workflow_stream(
        request: Request,
        project_id: str,
        workflow_id: str,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    ) -> EventSourceResponse:
        """Server-sent events, one per step; the stream ends after the workflow's last step."""
        await workflows.get_workflow(project_id, workflow_id)
        return await stream(request, project_id, last_event_id, workflow_id=workflow_id, incident_id=None)

    @router.get("/projects/{project_id}/incidents/{incident_id}/stream", tags=["incidents"])
    async def incident_stream(
        request: Request,
        project_id: str,
        incident_id: str,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    ) -> EventSourceResponse:
        """Server-sent events of every workflow of the incident, as they happen."""
        await store.get_incident(project_id, incident_id)
        return await stream(request, project_id, last_event_id, workflow_id=None, incident_id=incident_id)

    @router.get("/projects/{project_id}/approvals", tags=["approvals"])
    async def list_approvals(
        project_id: str,
        status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|expired)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        await store.get_project(project_id)
        return [
            approval_out(row)
            for row in await workflows.list_approvals(project_id, status=status, limit=limit)
        ]

    @router.get("/approvals", tags=["approvals"])
    async def all_approvals(
        status: Annotated[str | None, Query(pattern="^(pending|approved|rejected|expired)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Approvals across projects (the waiting ones with `status=pending`)."""
        return [approval_out(row) for row in await workflows.list_approvals(None, status=status, limit=limit)]

    async def decide(project_id: str, approval_id: str, status: str, body: Decision) -> dict[str, Any]:
        row = await workflows.decide(project_id, approval_id, status, body.by, body.reason)
        await audit.audit(
            project_id, body.by, "approval", approval_id, {"decision": status, "reason": body.reason}
        )
        if waker is not None:
            await waker.wake(row.workflow_id, status)
        return approval_out(row)

    @router.post("/projects/{project_id}/approvals/{approval_id}/approve", tags=["approvals"])
    async def approve(project_id: str, approval_id: str, body: Decision) -> dict[str, Any]:
        """Let the workflow act. A second answer, or one after the expiry, is a 409."""
        return await decide(project_id, approval_id, "approved", body)

    @router.post("/projects/{project_id}/approvals/{approval_id}/reject", tags=["approvals"])
    async def reject(project_id: str, approval_id: str, body: Decision) -> dict[str, Any]:
        """Stop the workflow: it escalates. A second answer is a 409."""
        return await decide(project_id, approval_id, "rejected", body)

    @router.put("/projects/{project_id}/workflow-policy", tags=["workflows"])
    async def put_policy(project_id: str, body: WorkflowPolicy) -> dict[str, Any]:
        """Which incidents enter the workflow, approvals' expiry, what actions may touch."""
        await workflows.put_policy(project_id, body)
        await audit.audit(project_id, "admin", "config.workflow_policy", project_id, {"change": "replaced"})
        return body.model_dump(mode="json")

    @router.get("/projects/{project_id}/workflow-policy", tags=["workflows"])
    async def get_policy(project_id: str) -> dict[str, Any]:
        await store.get_project(project_id)
        return (await workflows.policy(project_id)).model_dump(mode="json")

    return router
