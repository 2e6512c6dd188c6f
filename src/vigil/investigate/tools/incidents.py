"""`incidents`: the project's incidents, most recently updated first."""

from __future__ import annotations

from pydantic import Field

from vigil.investigate.citations import Citation
from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext


class IncidentsArgs(ToolArgs):
    status: str | None = Field(default=None, pattern="^(open|resolved)$")
    service: str | None = Field(default=None, max_length=256)


class IncidentsTool(Tool):
    name = "incidents"
    description = "Incidents of the project (open and resolved), with their services and signals."
    args = IncidentsArgs

    async def gather(self, ctx: ToolContext, project_id: str, args: IncidentsArgs) -> Found:
        rows = await ctx.store.list_incidents(project_id, status=args.status, limit=500)
        found = Found()
        by_status: dict[str, int] = {}
        for row in rows:
            body = row.body
            if args.service and args.service not in (body.get("services") or []):
                continue
            status = str(body.get("status", row.status))
            by_status[status] = by_status.get(status, 0) + 1
            title = str(body.get("title", ""))
            found.samples.append(
                Sample(
                    text=f"{status} {body.get('severity', '')} {title} services={','.join(body.get('services') or [])} "
                    f"opened={body.get('opened_at')} signals={len(body.get('signals') or [])}",
                    citation=Citation.of("incident", project_id, row.id, title),
                    fields={"incident_id": row.id},
                )
            )
        found.counts = {"incidents": len(found.samples), "by_status": by_status}
        return found
