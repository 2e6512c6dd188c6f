"""The management API: built from one router per resource, behind the admin token (alert intake
takes a project's keys too), with one error shape and the request guard in front of every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.telemetry import TelemetryConfig
from starlette.routing import Route
from starlette.types import Scope

from vigil import __version__
from vigil.agents.builtin.budget import TokenBudget
from vigil.api.alerts import ALERT_PATH, AlertCallers, OnIncidents, alerts_router
from vigil.api.audit_trail import AuditTrail
from vigil.api.auth import AdminAuth
from vigil.api.citations import citations_router
from vigil.api.dead_letters import dead_letters_router
from vigil.api.docs_pages import add_docs_pages
from vigil.api.errors import API_ERRORS, ORJSONResponse, install_error_handlers
from vigil.api.feedback import feedback_router
from vigil.api.guard import RequestGuard, header
from vigil.api.incidents import incidents_router
from vigil.api.live import live_router
from vigil.api.outputs import outputs_router
from vigil.api.pipelines import pipelines_router
from vigil.api.probes import add_probes
from vigil.api.projects import projects_router
from vigil.api.records import records_router
from vigil.api.replay import Replayer
from vigil.api.runbooks import runbooks_router
from vigil.api.session import Credentials, Sessions
from vigil.api.sinks import sinks_router
from vigil.api.timeseries import timeseries_router
from vigil.api.trial import trial_router
from vigil.api.ui import add_ui
from vigil.api.workflows import workflows_router
from vigil.bus.client import Bus
from vigil.detect.archive import EvidenceArchive
from vigil.investigate.remote import RecordsWindow
from vigil.mcp_server.http import MCP_PATH, McpEndpoint
from vigil.outbound_policy import OutboundPolicy
from vigil.receivers.keys import KeyResolver
from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.engine import WorkflowEngine, WorkflowWaker
from vigil.workflow.trigger import WorkflowTrigger, announce_incidents

NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own OpenTelemetry instrumentation, off: Vigil exports none of its own, and asking
for the global providers on every request was a measurable part of an alert's cost."""


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
    workflow_waker: WorkflowWaker | None = None
    """Approvals wake their workflow at once, in this process or another."""
    workflow_trigger: WorkflowTrigger | None = None
    workflow_engine: WorkflowEngine | None = None
    """Runs pasted logs' investigations where this process has it (a task of the API otherwise)."""
    bus: Bus | None = None
    """Wakes the live streams when a workflow (in any process) records a step."""
    mcp: McpEndpoint | None = None
    """The MCP server at `/mcp`, behind a project's key (started and stopped by its owner)."""
    recent: RecordsWindow | None = None
    """Recent records kept for investigation, where the router runs in this process."""


def create_api_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Vigil API",
        version=__version__,
        default_response_class=ORJSONResponse,
        description=(
            "Management API. Authenticate with `Authorization: Bearer <admin token>` (or the web UI's "
            "session cookie, with its `X-CSRF-Token` on every change)."
        ),
        docs_url=None,
        redoc_url=None,
        telemetry=NO_NATIVE_TELEMETRY,
    )
    add_docs_pages(app)
    install_error_handlers(app)
    callers = AlertCallers(ctx.keys or KeyResolver(ctx.store, ttl_s=5.0), ctx.auth)
    credentials = Credentials(ctx.auth, Sessions(ctx.auth.token.decode()))

    async def authenticate(scope: Scope) -> None:
        authorization = header(scope, b"authorization")
        alert = ALERT_PATH.match(scope["path"])
        if alert is not None:
            await callers.check(alert["project"], header(scope, b"x-api-key"), authorization)
        else:
            credentials.check(scope)

    app.add_middleware(AuditTrail, repo=WorkflowRepo(ctx.store))
    app.add_middleware(
        RequestGuard, max_body_bytes=ctx.max_body_bytes, authenticate=authenticate, protected=("/api/",)
    )
    store = ctx.store

    async def admin(request: Request) -> None:
        credentials.check(request.scope)

    # Alerts come in bursts: their routes are matched first, not after every admin route (their
    # paths are no other route's, so the order changes no answer)
    trigger = ctx.workflow_trigger
    if trigger is not None:
        on_opened: OnIncidents | None = trigger.incident_changed
    elif ctx.bus is not None:
        on_opened = partial(announce_incidents, ctx.bus)
    else:
        on_opened = None
    app.include_router(alerts_router(store, callers, on_opened))
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(admin)], responses=API_ERRORS)
    api.include_router(projects_router(store, ctx.changed))
    api.include_router(pipelines_router(store, ctx.changed, ctx.outbound))
    api.include_router(sinks_router(store, ctx.changed, ctx.outbound))
    api.include_router(trial_router(store, ctx.outbound))
    api.include_router(outputs_router(store))
    api.include_router(live_router(store))
    api.include_router(timeseries_router(store))
    api.include_router(dead_letters_router(store, ctx.replayer))
    api.include_router(incidents_router(store, ctx.evidence, ctx.budget))
    api.include_router(runbooks_router(store, WorkflowRepo(store)))
    api.include_router(workflows_router(store, ctx.workflow_waker, ctx.bus, ctx.workflow_engine))
    api.include_router(feedback_router(store))
    app.include_router(api)
    app.include_router(records_router(store, callers, ctx.recent))
    app.include_router(citations_router(store, callers, ctx.recent, ctx.evidence))

    if ctx.mcp is not None:
        app.router.routes.append(Route(MCP_PATH, ctx.mcp, methods=["GET", "POST", "DELETE"]))
    add_probes(app, ctx.ready)
    add_ui(app, credentials)
    return app


def create_ops_app(ready: Callable[[], Awaitable[bool]]) -> FastAPI:
    """Probes and metrics for a service that serves nothing else."""
    app = FastAPI(
        title="Vigil service",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=NO_NATIVE_TELEMETRY,
    )
    add_probes(app, ready)
    return app
