"""Runbooks (`PUT/GET/DELETE /api/v1/projects/{project_id}/runbooks/{runbook_id}`) and the audit
log (`GET .../audit`). Runbooks are taken as JSON or as YAML (`Content-Type: application/yaml`);
every change is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError

from vigil.errors import InvalidPayload, ValidationFailed
from vigil.store.models import AuditEntry, RunbookRow
from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.runbooks import RUNBOOK_ID, Runbook, RunbookSpec, invalid, parse_runbook

RunbookId = Annotated[str, Path(pattern=RUNBOOK_ID, description="Lowercase letters, digits, ., - and _.")]
_YAML = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def runbook_out(row: RunbookRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "origin": row.origin,
        "spec": row.spec,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def audit_out(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "actor": row.actor,
        "kind": row.kind,
        "subject": row.subject,
        "detail": row.detail,
    }


async def runbook_from(request: Request, runbook_id: str) -> Runbook:
    raw = await request.body()
    kind = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if kind in _YAML:
        runbook = parse_runbook(raw.decode(errors="replace"), "body", runbook_id)
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidPayload(f"body is not valid JSON: {exc}; send YAML as application/yaml") from exc
        if not isinstance(data, dict):
            raise InvalidPayload("a runbook is an object with match, steps, tier and verify")
        data.pop("id", None)
        try:
            runbook = Runbook(id=runbook_id, spec=RunbookSpec.model_validate(data))
        except ValidationError as exc:
            raise invalid(exc) from exc
    if runbook.id != runbook_id:
        raise ValidationFailed(f"the body names runbook {runbook.id!r}, the path {runbook_id!r}")
    return runbook


def runbooks_router(store: Store, repo: WorkflowRepo) -> APIRouter:
    router = APIRouter(tags=["runbooks"])

    @router.put(
        "/projects/{project_id}/runbooks/{runbook_id}",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": RunbookSpec.model_json_schema()},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def put_runbook(
        project_id: str, runbook_id: RunbookId, request: Request, response: Response
    ) -> Any:
        """Create or replace a runbook (JSON, or YAML with `Content-Type: application/yaml`)."""
        await store.get_project(project_id)
        runbook = await runbook_from(request, runbook_id)
        row, created = await repo.put_runbook(project_id, runbook)
        await repo.audit(
            project_id,
            "admin",
            "config.runbook",
            runbook_id,
            {"change": "created" if created else "replaced"},
        )
        response.status_code = 201 if created else 200
        return runbook_out(row)

    @router.get("/projects/{project_id}/runbooks")
    async def list_runbooks(project_id: str) -> list[dict[str, Any]]:
        await store.get_project(project_id)
        return [runbook_out(row) for row in await repo.list_runbooks(project_id)]

    @router.get("/projects/{project_id}/runbooks/{runbook_id}")
    async def get_runbook(project_id: str, runbook_id: RunbookId) -> dict[str, Any]:
        await store.get_project(project_id)
        return runbook_out(await repo.get_runbook(project_id, runbook_id))

    @router.delete("/projects/{project_id}/runbooks/{runbook_id}", status_code=204)
    async def delete_runbook(project_id: str, runbook_id: RunbookId) -> Response:
        await store.get_project(project_id)
        await repo.delete_runbook(project_id, runbook_id)
        await repo.audit(project_id, "admin", "config.runbook", runbook_id, {"change": "deleted"})
        return Response(status_code=204)

    @router.get("/projects/{project_id}/audit", tags=["audit"])
    async def audit(
        project_id: str,
        kind: Annotated[
            str | None, Query(max_length=64, description="A kind or its prefix, e.g. config.")
        ] = None,
        subject: Annotated[str | None, Query(max_length=200)] = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: Annotated[
            int | None, Query(ge=1, description="Page back: entries older than this id.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """The audit log, newest first."""
        await store.get_project(project_id)
        rows = await repo.list_audit(
            project_id,
            kind=kind,
            subject=subject,
            actor=actor,
            since=since,
            until=until,
            limit=limit,
            before_id=before_id,
        )
        return [audit_out(row) for row in rows]

    return router
