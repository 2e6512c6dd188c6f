"""`replays`: the replays of an incident's archived requests, newest first."""

from __future__ import annotations

from pydantic import Field

from vigil.investigate.citations import Citation
from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext


class ReplaysArgs(ToolArgs):
    incident_id: str = Field(min_length=1, max_length=64)


class ReplaysTool(Tool):
    name = "replays"
    description = "Replays of an incident's requests: whether the problem reproduced."
    args = ReplaysArgs

    async def gather(self, ctx: ToolContext, project_id: str, args: ReplaysArgs) -> Found:
        await ctx.store.get_incident(project_id, args.incident_id)
        rows = await ctx.store.list_incident_replays(project_id, args.incident_id, limit=100)
        found = Found(counts={"replays": len(rows), "reproduced": sum(1 for r in rows if r.reproduced)})
        for row in rows:
            text = (
                f"{row.at.isoformat()} {row.target}: {'reproduced' if row.reproduced else 'not reproduced'} "
                f"({row.attempted} attempted, {row.failed} failed)"
            )
            found.samples.append(Sample(text=text, citation=Citation.of("replay", project_id, row.id, text)))
        return found
