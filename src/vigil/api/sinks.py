"""Sinks: where a project's agent outputs are sent on (webhooks, chat)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from pydantic import TypeAdapter

from vigil.api.saved_specs import check_outbound, stored_spec
from vigil.api.schemas import SinkOut
from vigil.masking import mask_url
from vigil.outbound_policy import OutboundPolicy
from vigil.specs import SinkSpec, WebhookSinkSpec
from vigil.store.models import Sink
from vigil.store.repo import Store

_SINK_ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSpec)


def _sink_out(row: Sink) -> SinkOut:
    spec, problem = stored_spec(row.spec, _SINK_ADAPTER.validate_python)
    if problem is None:
        if "url" in spec:
            spec["url"] = mask_url(spec["url"])
        if "url" in spec and spec.get("secret"):
            spec["secret"] = "**********"
    return SinkOut(
        id=row.id,
        project_id=row.project_id,
        type=row.type,
        name=row.name,
        spec=spec,
        created_at=row.created_at,
        problem=problem,
    )


def sinks_router(
    store: Store, changed: Callable[[str], Awaitable[None]], outbound: OutboundPolicy
) -> APIRouter:
    router = APIRouter(tags=["sinks"])

    @router.post("/projects/{project_id}/sinks", status_code=201, response_model=SinkOut)
    async def add_sink(project_id: str, body: SinkSpec) -> Any:
        if isinstance(body, WebhookSinkSpec):
            check_outbound(outbound, str(body.url), ["url"])
        else:
            check_outbound(outbound, body.webhook_url.get_secret_value(), ["webhook_url"])
        row = await store.add_sink(project_id, body)
        await changed(project_id)
        return _sink_out(row)

    @router.get("/projects/{project_id}/sinks", response_model=list[SinkOut])
    async def list_sinks(project_id: str) -> Any:
        await store.get_project(project_id)
        return [_sink_out(row) for row in await store.list_sinks(project_id)]

    @router.get("/projects/{project_id}/sinks/{sink_id}", response_model=SinkOut)
    async def get_sink(project_id: str, sink_id: str) -> Any:
        return _sink_out(await store.get_sink(project_id, sink_id))

    @router.delete("/projects/{project_id}/sinks/{sink_id}", status_code=204)
    async def delete_sink(project_id: str, sink_id: str) -> Response:
        await store.delete_sink(project_id, sink_id)
        await changed(project_id)
        return Response(status_code=204)

    return router
