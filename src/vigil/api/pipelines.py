"""Pipelines: a project's routes from its telemetry to an agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from vigil.api.saved_specs import check_outbound, public_spec, stored_spec
from vigil.api.schemas import PipelineOut
from vigil.errors import NotFound
from vigil.masking import MASK, mask_url
from vigil.outbound_policy import OutboundPolicy
from vigil.specs import NAME_PATTERN, PipelineSpec
from vigil.store.models import Pipeline
from vigil.store.repo import Store

PipelineName = Annotated[str, Path(pattern=NAME_PATTERN, description="Lowercase letters, digits, - and _.")]


async def _keep_stored_credentials(
    store: Store, project_id: str, name: str, spec: PipelineSpec
) -> PipelineSpec:
    """A spec read back (masked) and saved again keeps the credentials of the stored endpoint."""
    if MASK not in spec.agent.endpoint:
        return spec
    try:
        stored = (await store.get_pipeline(project_id, name)).spec["agent"]["endpoint"]
    except (NotFound, KeyError, TypeError):
        return spec
    if not isinstance(stored, str) or mask_url(stored) != spec.agent.endpoint:
        return spec
    return spec.model_copy(update={"agent": spec.agent.model_copy(update={"endpoint": stored})})


def _pipeline_out(row: Pipeline) -> PipelineOut:
    spec, problem = stored_spec(row.spec, PipelineSpec.model_validate)
    return PipelineOut(
        project_id=row.project_id,
        name=row.name,
        spec=spec,
        created_at=row.created_at,
        updated_at=row.updated_at,
        problem=problem,
    )


def pipelines_router(
    store: Store, changed: Callable[[str], Awaitable[None]], outbound: OutboundPolicy
) -> APIRouter:
    router = APIRouter(tags=["pipelines"])

    @router.put("/projects/{project_id}/pipelines/{name}", response_model=PipelineOut)
    async def put_pipeline(project_id: str, name: PipelineName, body: PipelineSpec) -> Any:
        body = await _keep_stored_credentials(store, project_id, name, body)
        if not body.agent.endpoint.startswith("builtin:"):
            check_outbound(outbound, body.agent.endpoint, ["agent", "endpoint"])
        row, _ = await store.put_pipeline(project_id, name, body)
        await changed(project_id)
        return PipelineOut(
            project_id=project_id,
            name=name,
            spec=public_spec(body),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @router.get("/projects/{project_id}/pipelines", response_model=list[PipelineOut])
    async def list_pipelines(project_id: str) -> Any:
        await store.get_project(project_id)
        return [_pipeline_out(row) for row in await store.list_pipelines(project_id)]

    @router.get("/projects/{project_id}/pipelines/{name}", response_model=PipelineOut)
    async def get_pipeline(project_id: str, name: PipelineName) -> Any:
        return _pipeline_out(await store.get_pipeline(project_id, name))

    @router.delete("/projects/{project_id}/pipelines/{name}", status_code=204)
    async def delete_pipeline(project_id: str, name: PipelineName) -> Response:
        await store.delete_pipeline(project_id, name)
        await changed(project_id)
        return Response(status_code=204)

    return router
