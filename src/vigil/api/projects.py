"""Projects and their API keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response

from vigil.api.schemas import ApiKeyCreated, ApiKeyOut, KeyIn, ProjectOut
from vigil.specs import ProjectSpec
from vigil.store.models import ApiKey
from vigil.store.repo import Store


def _key_out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        revoked=row.revoked_at is not None,
    )


def projects_router(store: Store, changed: Callable[[str], Awaitable[None]]) -> APIRouter:
    router = APIRouter()

    @router.post("/projects", status_code=201, response_model=ProjectOut, tags=["projects"])
    async def create_project(body: ProjectSpec) -> Any:
        return await store.create_project(body.name)

    @router.get("/projects", response_model=list[ProjectOut], tags=["projects"])
    async def list_projects() -> Any:
        return await store.list_projects()

    @router.get("/projects/{project_id}", response_model=ProjectOut, tags=["projects"])
    async def get_project(project_id: str) -> Any:
        return await store.get_project(project_id)

    @router.patch("/projects/{project_id}", response_model=ProjectOut, tags=["projects"])
    async def rename_project(project_id: str, body: ProjectSpec) -> Any:
        """Rename the project (its id, keys and configuration stay)."""
        return await store.rename_project(project_id, body.name)

    @router.delete("/projects/{project_id}", status_code=204, tags=["projects"])
    async def delete_project(project_id: str) -> Response:
        await store.delete_project(project_id)
        await changed(project_id)
        return Response(status_code=204)

    @router.post(
        "/projects/{project_id}/api-keys", status_code=201, response_model=ApiKeyCreated, tags=["keys"]
    )
    async def create_key(project_id: str, body: KeyIn) -> Any:
        row, plaintext = await store.create_key(project_id, body.name)
        return ApiKeyCreated(**_key_out(row).model_dump(), key=plaintext)

    @router.get("/projects/{project_id}/api-keys", response_model=list[ApiKeyOut], tags=["keys"])
    async def list_keys(project_id: str) -> Any:
        return [_key_out(row) for row in await store.list_keys(project_id)]

    @router.delete("/projects/{project_id}/api-keys/{key_id}", response_model=ApiKeyOut, tags=["keys"])
    async def revoke_key(project_id: str, key_id: str) -> Any:
        row = await store.revoke_key(project_id, key_id)
        await changed(project_id)
        return _key_out(row)

    return router
