"""The MCP server's tools, on the official SDK's `MCPServer`. Each call is for the project of the
API key its HTTP request carried (the endpoint put it in the request's scope); nothing else
chooses the project, so one project's key never reads another's data."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, ValidationError

from vigil import __version__
from vigil.errors import VigilError
from vigil.mcp_server.records import RecordQuery, RecordsUnavailable
from vigil.mcp_server.tools import VigilTools
from vigil.workflow.proposals import Proposal

PROJECT_SCOPE_KEY = "vigil.project_id"
"""Where the endpoint leaves the caller's project in the ASGI scope."""
INSTRUCTIONS = (
    "Vigil watches one project's telemetry (the project of your API key). Read its incidents, "
    "their evidence, log templates, recent records and remediation workflows. To act, propose one "
    "of the project's configured runbooks (list_runbooks) for an open incident: a person approves "
    "it before anything runs; follow it with get_action_result."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
Limit = Annotated[int, Field(ge=1, le=50, description="At most this many items.")]


def project_of(ctx: Context[Any, Any]) -> str:
    request = ctx.request_context.request
    project_id = getattr(request, "scope", {}).get(PROJECT_SCOPE_KEY)
    if not isinstance(project_id, str):
        raise ToolError("no project: call this server through Vigil's /mcp endpoint with a project API key")
    return project_id


async def answer(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A Vigil error is the model's to read (not found, not allowed, invalid), not a crash."""
    try:
        return await call
    except (VigilError, RecordsUnavailable) as exc:
        raise ToolError(getattr(exc, "message", str(exc))) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ToolError(problems) from None


def build_mcp_server(tools: VigilTools) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        "vigil", title="Vigil", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    @server.tool(annotations=READ_ONLY)
    async def list_incidents(
        ctx: Context[Any, Any], status: Literal["open", "resolved"] | None = None, limit: Limit = 20
    ) -> dict[str, Any]:
        """The project's incidents, most recently updated first, without their signals."""
        return await answer(tools.list_incidents(project_of(ctx), status, limit))

    @server.tool(annotations=READ_ONLY)
    async def get_incident(ctx: Context[Any, Any], incident_id: str) -> dict[str, Any]:
        """One incident: its signals (with fingerprints for get_evidence), timeline and workflows."""
        return await answer(tools.get_incident(project_of(ctx), incident_id))

    @server.tool(annotations=READ_ONLY)
    async def list_workflows(
        ctx: Context[Any, Any],
        status: str | None = None,
        incident_id: str | None = None,
        limit: Limit = 20,
    ) -> dict[str, Any]:
        """Remediation workflows, most recently updated first (status e.g. waiting_approval, resolved)."""
        return await answer(tools.list_workflows(project_of(ctx), status, incident_id, limit))

    @server.tool(annotations=READ_ONLY)
    async def get_workflow(ctx: Context[Any, Any], workflow_id: str) -> dict[str, Any]:
        """A workflow with its steps, analysis, plan, approval and outcome."""
        return await answer(tools.get_workflow(project_of(ctx), workflow_id))

    @server.tool(annotations=READ_ONLY)
    async def list_runbooks(ctx: Context[Any, Any]) -> dict[str, Any]:
        """The runbooks people configured for the project: the only actions that can be proposed."""
        return await answer(tools.list_runbooks(project_of(ctx)))

    @server.tool(annotations=READ_ONLY)
    async def query_templates(
        ctx: Context[Any, Any],
        contains: Annotated[
            str | None, Field(max_length=200, description="Case-insensitive substring.")
        ] = None,
        limit: Limit = 20,
    ) -> dict[str, Any]:
        """Log templates (messages with their variable parts as <*>) and how many records each
        took, the largest first; `matched` counts all that match before the sample."""
        return await answer(tools.query_templates(project_of(ctx), contains, limit))

    @server.tool(annotations=READ_ONLY)
    async def query_records(
        ctx: Context[Any, Any],
        service: str | None = None,
        severity: Annotated[str | None, Field(description="This severity or worse, e.g. error.")] = None,
        template_id: str | None = None,
        trace_id: str | None = None,
        grep: Annotated[str | None, Field(description="An RE2 pattern searched in the body.")] = None,
        since_minutes: Annotated[float, Field(gt=0, le=1440)] = 60,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        """Recent log records of the project (redacted): how many match, by service, severity and
        template, then the newest of them."""
        query = RecordQuery(
            service=service,
            severity=severity,
            template_id=template_id,
            trace_id=trace_id,
            grep=grep,
            since_s=since_minutes * 60,
            limit=limit,
        )
        return await answer(tools.query_records(project_of(ctx), query))

    @server.tool(annotations=READ_ONLY)
    async def get_evidence(
        ctx: Context[Any, Any],
        fingerprint: Annotated[str, Field(description="A signal's fingerprint, from get_incident.")],
        limit: Annotated[int, Field(ge=1, le=10)] = 3,
    ) -> dict[str, Any]:
        """The evidence archived for a signal (the records and spans around it), newest first."""
        return await answer(tools.get_evidence(project_of(ctx), fingerprint, limit))

    @server.tool(
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    )
    async def propose_action(
        ctx: Context[Any, Any],
        incident_id: str,
        runbook_id: Annotated[str, Field(description="A runbook of the project, from list_runbooks.")],
        reason: Annotated[str, Field(min_length=1, max_length=2000, description="Why, for the approver.")],
        step: Annotated[
            str | None, Field(description="Only this step of the runbook: its name or number from 1.")
        ] = None,
        agent: Annotated[str, Field(min_length=1, max_length=100, description="Who proposes.")] = "agent",
    ) -> dict[str, Any]:
        """Propose running a configured runbook (or one of its steps) for an open incident. Nothing
        runs until a person approves: the answer is the workflow and its pending approval."""
        project_id = project_of(ctx)

        async def propose() -> dict[str, Any]:
            proposal = Proposal(
                incident_id=incident_id, runbook_id=runbook_id, step=step, reason=reason, by=f"mcp:{agent}"
            )
            return await tools.propose_action(project_id, proposal)

        return await answer(propose())

    @server.tool(annotations=READ_ONLY)
    async def get_action_result(ctx: Context[Any, Any], workflow_id: str) -> dict[str, Any]:
        """What became of a proposal (or any workflow): its status, approval, steps and outcome."""
        return await answer(tools.get_action_result(project_of(ctx), workflow_id))

    @server.resource(
        "vigil://incidents/{incident_id}", mime_type="application/json", description="One incident."
    )
    async def incident_resource(incident_id: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        return await read(tools.get_incident(project_of(ctx), incident_id))

    @server.resource(
        "vigil://workflows/{workflow_id}", mime_type="application/json", description="One workflow."
    )
    async def workflow_resource(workflow_id: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        return await read(tools.get_workflow(project_of(ctx), workflow_id))

    return server


async def read(call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await call
    except VigilError as exc:
        raise ResourceError(exc.message) from None
