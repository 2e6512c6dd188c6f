"""`templates`: the project's log templates with their counts, the most frequent first."""

from __future__ import annotations

from pydantic import Field

from vigil.investigate.citations import Citation, project_miner
from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext


class TemplatesArgs(ToolArgs):
    template_ids: list[str] | None = Field(default=None, max_length=100, description="Only these.")


class TemplatesTool(Tool):
    name = "templates"
    description = "Log templates of the project with how many records each took."
    args = TemplatesArgs

    async def gather(self, ctx: ToolContext, project_id: str, args: TemplatesArgs) -> Found:
        miner = await project_miner(ctx.store, ctx.templates, project_id)
        matches = miner.templates() if miner is not None else []
        if args.template_ids is not None:
            wanted = {miner.resolve(t) for t in args.template_ids} if miner is not None else set()
            matches = [m for m in matches if m.template_id in wanted]
        matches.sort(key=lambda m: -m.cluster_size)
        found = Found(counts={"templates": len(matches), "records": sum(m.cluster_size for m in matches)})
        for match in matches:
            found.samples.append(
                Sample(
                    text=f"{match.cluster_size} x {match.template}",
                    citation=Citation.of("template", project_id, match.template_id, match.template),
                    fields={"template_id": match.template_id, "count": match.cluster_size},
                )
            )
        return found
