"""The management API: projects, keys, pipelines, sinks, outputs, batches and dead letters."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Response
from pydantic import TypeAdapter, ValidationError
from starlette.types import Scope

from vigil import __version__
from vigil.agents.builtin.budget import TokenBudget
from vigil.api.alerts import ALERT_PATH, AlertCallers, alerts_router
from vigil.api.auth import AdminAuth
from vigil.api.errors import API_ERRORS, ORJSONResponse, install_error_handlers
from vigil.api.guard import RequestGuard, header
from vigil.api.probes import add_probes
from vigil.api.replay import Replayer
from vigil.api.runbooks import runbooks_router
from vigil.api.schemas import (
    STORED_INVALID,
    ApiKeyCreated,
    ApiKeyOut,
    BatchOut,
    Confirmation,
    DeadLetterOut,
    IncidentReplayIn,
    IncidentReplayOut,
    KeyIn,
    OutputOut,
    PipelineOut,
    ProjectOut,
    ReplayOut,
    SinkOut,
)
from vigil.api.workflows import workflows_router
from vigil.detect.archive import SEGMENT, EvidenceArchive
from vigil.errors import NotFound, ValidationFailed
from vigil.masking import MASK, mask_url
from vigil.outbound_policy import OutboundPolicy, OutboundRefused
from vigil.receivers.keys import KeyResolver
from vigil.specs import NAME_PATTERN, PipelineSpec, ProjectSpec, SinkSpec, WebhookSinkSpec
from vigil.store.models import ApiKey, Batch, IncidentReplay, Pipeline, Sink
from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.engine import WorkflowEngine
from vigil.workflow.trigger import WorkflowTrigger

log = logging.getLogger(__name__)

_SINK_ADAPTER: TypeAdapter[Any] = TypeAdapter(SinkSpec)

PipelineName = Annotated[str, Path(pattern=NAME_PATTERN, description="Lowercase letters, digits, - and _.")]


@dataclass
class ApiContext:
    store: Store
    auth: AdminAuth
    replayer: Replayer
    changed: Callable[[str], Awaitable[None]]
    """Called after a configuration change of a project, before the response is sent."""
    ready: Callable[[], Awaitable[bool]]
    budget: TokenBudget | None = None
    """The LLM engine's token budget, when an LLM is configured."""
    evidence: EvidenceArchive | None = None
    """The evidence archive the detector writes, read back for incidents."""
    max_body_bytes: int = 4 * 1024 * 1024
    keys: KeyResolver | None = None
    """Project keys, for the routes that take them (alert intake); the store's when not given."""
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    """Where agents and sinks may be sent: checked when a pipeline or sink is saved."""
    workflow_engine: WorkflowEngine | None = None
    """In this process (`vigil up`): approvals wake their workflow at once."""
    workflow_trigger: WorkflowTrigger | None = None


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


def _public_spec(spec: Any) -> dict[str, Any]:
    """A spec as the API shows it: secrets masked (headers, signing secrets, credentials in URLs)."""
    dumped: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    agent = dumped.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("endpoint"), str):
        agent["endpoint"] = mask_url(agent["endpoint"])
    return dumped


def _check_outbound(policy: OutboundPolicy, url: str, loc: list[str]) -> None:
    try:
        policy.check_url(url)
    except OutboundRefused as exc:
        where = ".".join(loc)
        message = f"{where}: refused by the outbound policy: {exc}"
        details = {"errors": [{"loc": ["body", *loc], "msg": str(exc), "type": "outbound_refused"}]}
        raise ValidationFailed(message, details=details) from None


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


def _stored_spec(stored: Any, validate: Callable[[Any], Any]) -> tuple[dict[str, Any], str | None]:
    """A stored spec as the API shows it, and why it no longer validates when it does not (saved
    under older, looser rules): then shown as stored, its secrets masked all the same."""
    try:
        return _public_spec(validate(stored)), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _masked_stored(stored), f"{STORED_INVALID} ({where}: {first['msg']})"


def _masked_stored(stored: Any) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(stored) if isinstance(stored, dict) else {}
    agent = spec.get("agent")
    for holder in (spec, agent if isinstance(agent, dict) else {}):
        for key in ("endpoint", "url"):
            if isinstance(holder.get(key), str):
                holder[key] = mask_url(holder[key])
        for key in ("secret", "webhook_url"):
            if holder.get(key) is not None:
                holder[key] = "**********"
        if isinstance(holder.get("headers"), dict) and holder is agent:
            holder["headers"] = {name: "**********" for name in holder["headers"]}
    return spec


def _pipeline_out(row: Pipeline) -> PipelineOut:
    spec, problem = _stored_spec(row.spec, PipelineSpec.model_validate)
    return PipelineOut(
        project_id=row.project_id,
        name=row.name,
        spec=spec,
        created_at=row.created_at,
        updated_at=row.updated_at,
        problem=problem,
    )


def _sink_out(row: Sink) -> SinkOut:
    spec, problem = _stored_spec(row.spec, _SINK_ADAPTER.validate_python)
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


def _replay_out(row: IncidentReplay) -> IncidentReplayOut:
    return IncidentReplayOut.model_validate(row, from_attributes=True)


def _confirmation(row: IncidentReplay | None) -> dict[str, Any] | None:
    """An incident's `confirmation`: its latest replay, or None when it was never replayed."""
    if row is None:
        return None
    return Confirmation(
        confirmed=row.reproduced,
        at=row.at,
        target=row.target,
        attempted=row.attempted,
        failed=row.failed,
        replay_id=row.id,
    ).model_dump(mode="json")


def create_api_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Vigil API",
        version=__version__,
        default_response_class=ORJSONResponse,
        description="Management API. Authenticate with `Authorization: Bearer <admin token>`.",
    )
    install_error_handlers(app)
    callers = AlertCallers(ctx.keys or KeyResolver(ctx.store, ttl_s=5.0), ctx.auth)

    async def authenticate(scope: Scope) -> None:
        authorization = header(scope, b"authorization")
        alert = ALERT_PATH.match(scope["path"])
        if alert is not None:
            await callers.check(alert["project"], header(scope, b"x-api-key"), authorization)
        else:
            ctx.auth.check(authorization)

    app.add_middleware(
        RequestGuard, max_body_bytes=ctx.max_body_bytes, authenticate=authenticate, protected=("/api/",)
    )
    store = ctx.store

    async def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        ctx.auth.check(authorization)

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(admin)], responses=API_ERRORS)

    @api.post("/projects", status_code=201, response_model=ProjectOut, tags=["projects"])
    async def create_project(body: ProjectSpec) -> Any:
        return await store.create_project(body.name)

    @api.get("/projects", response_model=list[ProjectOut], tags=["projects"])
    async def list_projects() -> Any:
        return await store.list_projects()

    @api.get("/projects/{project_id}", response_model=ProjectOut, tags=["projects"])
    async def get_project(project_id: str) -> Any:
        return await store.get_project(project_id)

    @api.delete("/projects/{project_id}", status_code=204, tags=["projects"])
    async def delete_project(project_id: str) -> Response:
        await store.delete_project(project_id)
        await ctx.changed(project_id)
        return Response(status_code=204)

    @api.post("/projects/{project_id}/api-keys", status_code=201, response_model=ApiKeyCreated, tags=["keys"])
    async def create_key(project_id: str, body: KeyIn) -> Any:
        row, plaintext = await store.create_key(project_id, body.name)
        return ApiKeyCreated(**_key_out(row).model_dump(), key=plaintext)

    @api.get("/projects/{project_id}/api-keys", response_model=list[ApiKeyOut], tags=["keys"])
    async def list_keys(project_id: str) -> Any:
        return [_key_out(row) for row in await store.list_keys(project_id)]

    @api.delete("/projects/{project_id}/api-keys/{key_id}", response_model=ApiKeyOut, tags=["keys"])
    async def revoke_key(project_id: str, key_id: str) -> Any:
        row = await store.revoke_key(project_id, key_id)
        await ctx.changed(project_id)
        return _key_out(row)

    @api.put("/projects/{project_id}/pipelines/{name}", response_model=PipelineOut, tags=["pipelines"])
    async def put_pipeline(project_id: str, name: PipelineName, body: PipelineSpec) -> Any:
        body = await _keep_stored_credentials(store, project_id, name, body)
        if not body.agent.endpoint.startswith("builtin:"):
            _check_outbound(ctx.outbound, body.agent.endpoint, ["agent", "endpoint"])
        row, _ = await store.put_pipeline(project_id, name, body)
        await ctx.changed(project_id)
        return PipelineOut(
            project_id=project_id,
            name=name,
            spec=_public_spec(body),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @api.get("/projects/{project_id}/pipelines", response_model=list[PipelineOut], tags=["pipelines"])
    async def list_pipelines(project_id: str) -> Any:
        await store.get_project(project_id)
        return [_pipeline_out(row) for row in await store.list_pipelines(project_id)]

    @api.get("/projects/{project_id}/pipelines/{name}", response_model=PipelineOut, tags=["pipelines"])
    async def get_pipeline(project_id: str, name: PipelineName) -> Any:
        return _pipeline_out(await store.get_pipeline(project_id, name))

    @api.delete("/projects/{project_id}/pipelines/{name}", status_code=204, tags=["pipelines"])
    async def delete_pipeline(project_id: str, name: PipelineName) -> Response:
        await store.delete_pipeline(project_id, name)
        await ctx.changed(project_id)
        return Response(status_code=204)

    @api.post("/projects/{project_id}/sinks", status_code=201, response_model=SinkOut, tags=["sinks"])
    async def add_sink(project_id: str, body: SinkSpec) -> Any:
        if isinstance(body, WebhookSinkSpec):
            _check_outbound(ctx.outbound, str(body.url), ["url"])
        else:
            _check_outbound(ctx.outbound, body.webhook_url.get_secret_value(), ["webhook_url"])
        row = await store.add_sink(project_id, body)
        await ctx.changed(project_id)
        return _sink_out(row)

    @api.get("/projects/{project_id}/sinks", response_model=list[SinkOut], tags=["sinks"])
    async def list_sinks(project_id: str) -> Any:
        await store.get_project(project_id)
        return [_sink_out(row) for row in await store.list_sinks(project_id)]

    @api.get("/projects/{project_id}/sinks/{sink_id}", response_model=SinkOut, tags=["sinks"])
    async def get_sink(project_id: str, sink_id: str) -> Any:
        return _sink_out(await store.get_sink(project_id, sink_id))

    @api.delete("/projects/{project_id}/sinks/{sink_id}", status_code=204, tags=["sinks"])
    async def delete_sink(project_id: str, sink_id: str) -> Response:
        await store.delete_sink(project_id, sink_id)
        await ctx.changed(project_id)
        return Response(status_code=204)

    @api.get("/projects/{project_id}/outputs", response_model=list[OutputOut], tags=["outputs"])
    async def list_outputs(
        project_id: str,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        request_id: str | None = None,
    ) -> Any:
        await store.get_project(project_id)
        result = []
        for row in await store.list_outputs(project_id, limit=limit, request_id=request_id):
            batch = await store.get_batch(row.request_id)
            result.append(
                OutputOut(
                    id=row.id,
                    project_id=row.project_id,
                    request_id=row.request_id,
                    pipeline=row.pipeline,
                    payload=row.payload,
                    received_at=row.received_at,
                    batch=_batch_out(batch, with_records=True) if batch is not None else None,
                )
            )
        return result

    @api.get("/projects/{project_id}/batches", response_model=list[BatchOut], tags=["batches"])
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

    @api.get("/projects/{project_id}/batches/{request_id}", response_model=BatchOut, tags=["batches"])
    async def get_batch(project_id: str, request_id: str) -> Any:
        row = await store.get_batch(request_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"no batch {request_id!r} in project {project_id!r}")
        return _batch_out(row, with_records=True)

    @api.get("/projects/{project_id}/dead-letters", response_model=list[DeadLetterOut], tags=["dead letters"])
    async def list_dead_letters(
        project_id: str,
        kind: Annotated[str | None, Query(pattern="^(batch|sink)$")] = None,
        include_replayed: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Any:
        await store.get_project(project_id)
        return await store.list_dead_letters(
            project_id, kind=kind, include_replayed=include_replayed, limit=limit
        )

    @api.post(
        "/projects/{project_id}/dead-letters/{dead_letter_id}/replay",
        response_model=ReplayOut,
        tags=["dead letters"],
    )
    async def replay_one(project_id: str, dead_letter_id: str) -> Any:
        row = await store.get_dead_letter(project_id, dead_letter_id)
        await ctx.replayer.replay(row)
        return ReplayOut(replayed=[row.id])

    @api.post("/projects/{project_id}/dead-letters/replay", response_model=ReplayOut, tags=["dead letters"])
    async def replay_all(
        project_id: str, kind: Annotated[str | None, Query(pattern="^(batch|sink)$")] = None
    ) -> Any:
        await store.get_project(project_id)
        rows = await store.list_dead_letters(project_id, kind=kind, include_replayed=False, limit=1000)
        for row in rows:
            await ctx.replayer.replay(row)
        return ReplayOut(replayed=[row.id for row in rows])

    @api.get("/projects/{project_id}/stats", tags=["projects"])
    async def stats(project_id: str) -> dict[str, Any]:
        await store.get_project(project_id)
        return await store.counts(project_id)

    @api.get("/projects/{project_id}/incidents", tags=["incidents"])
    async def list_incidents(
        project_id: str,
        status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Incidents, most recently updated first, without their signals and timeline."""
        await store.get_project(project_id)
        rows = await store.list_incidents(project_id, status=status, limit=limit)
        summary = (
            "id",
            "title",
            "severity",
            "status",
            "services",
            "opened_at",
            "updated_at",
            "resolved_at",
            "reopened",
        )
        replays = await store.latest_incident_replays(project_id, [row.id for row in rows])
        return [
            {
                **{key: row.body.get(key) for key in summary},
                "confirmation": _confirmation(replays.get(row.id)),
            }
            for row in rows
        ]

    @api.get("/projects/{project_id}/incidents/{incident_id}", tags=["incidents"])
    async def get_incident(
        project_id: str,
        incident_id: str,
        evidence_limit: Annotated[int, Query(ge=0, le=100)] = 5,
    ) -> dict[str, Any]:
        """One incident with its signals (each with its evidence) and its timeline, and under
        `evidence` the archived documents of each signal's fingerprint, newest first."""
        body: dict[str, Any] = (await store.get_incident(project_id, incident_id)).body
        replays = await store.latest_incident_replays(project_id, [incident_id])
        body["confirmation"] = _confirmation(replays.get(incident_id))  # the latest replay, or null
        fingerprints = list(dict.fromkeys(s["fingerprint"] for s in body.get("signals", [])))
        body["evidence"] = {}
        if ctx.evidence is not None and evidence_limit and fingerprints:
            found = await asyncio.gather(
                *(ctx.evidence.get(project_id, fp, evidence_limit) for fp in fingerprints),
                return_exceptions=True,
            )
            for fp, documents in zip(fingerprints, found, strict=True):
                if isinstance(documents, BaseException):
                    log.warning("evidence unreadable", extra={"fingerprint": fp, "error": str(documents)})
                    body.setdefault("evidence_errors", {})[fp] = str(documents)
                else:
                    body["evidence"][fp] = documents
        return body

    @api.post(
        "/projects/{project_id}/incidents/{incident_id}/replays",
        status_code=201,
        response_model=IncidentReplayOut,
        tags=["incidents"],
    )
    async def add_incident_replay(project_id: str, incident_id: str, body: IncidentReplayIn) -> Any:
        """Record a replay of the incident's archived requests (`vigil replay`); the latest replay is
        the incident's `confirmation`."""
        row = await store.add_incident_replay(
            project_id,
            incident_id,
            target=body.target,
            reproduced=body.reproduced,
            attempted=body.attempted,
            failed=body.failed,
            results=[result.model_dump(mode="json") for result in body.results],
        )
        return _replay_out(row)

    @api.get(
        "/projects/{project_id}/incidents/{incident_id}/replays",
        response_model=list[IncidentReplayOut],
        tags=["incidents"],
    )
    async def list_incident_replays(
        project_id: str, incident_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 20
    ) -> Any:
        """The incident's replays, newest first."""
        await store.get_incident(project_id, incident_id)
        rows = await store.list_incident_replays(project_id, incident_id, limit=limit)
        return [_replay_out(row) for row in rows]

    @api.get("/projects/{project_id}/evidence/{fingerprint}", tags=["incidents"])
    async def get_evidence(
        project_id: str,
        fingerprint: Annotated[str, Path(pattern=f"^{SEGMENT}$", description="A signal's fingerprint.")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> list[dict[str, Any]]:
        """The archived evidence documents of one signal fingerprint, newest window first."""
        await store.get_project(project_id)
        if ctx.evidence is None:
            return []
        return await ctx.evidence.get(project_id, fingerprint, limit)

    @api.get("/projects/{project_id}/llm-usage", tags=["projects"])
    async def llm_usage(project_id: str) -> dict[str, Any]:
        """Tokens the LLM engine spent for the project today and per incident, and what is left."""
        await store.get_project(project_id)
        if ctx.budget is None:
            return {"configured": False}
        return {"configured": True, **await ctx.budget.usage(project_id)}

    api.include_router(runbooks_router(store, WorkflowRepo(store)))
    api.include_router(workflows_router(store, ctx.workflow_engine))
    app.include_router(api)
    trigger = ctx.workflow_trigger
    app.include_router(alerts_router(store, callers, trigger.incident_changed if trigger else None))

    add_probes(app, ctx.ready)
    return app


def create_ops_app(ready: Callable[[], Awaitable[bool]]) -> FastAPI:
    """Probes and metrics for a service that serves nothing else."""
    app = FastAPI(title="Vigil service", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    add_probes(app, ready)
    return app
