"""`templates`: the project's log templates with their counts, the most frequent first: how many of
the recent records each took (the window's) and how many records it took since it was learnt
(the project's miner, which learns the records of projects that have pipelines)."""

from __future__ import annotations

from pydantic import Field

from vigil.investigate.citations import Citation, project_miner
from vigil.investigate.records import RecordQuery
from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext


class TemplatesArgs(ToolArgs):
    template_ids: list[str] | None = Field(default=None, max_length=100, description="Only these.")
    service: str | None = Field(
        default=None, max_length=256, description="Recent counts of this service only."
    )


class TemplatesTool(Tool):
    name = "templates"
    description = "Log templates of the project with how many recent records and records in all each took."
    args = TemplatesArgs

    async def gather(self, ctx: ToolContext, project_id: str, args: TemplatesArgs) -> Found:
        miner = await project_miner(ctx.store, ctx.templates, project_id)
        learnt = {m.template_id: m for m in (miner.templates() if miner is not None else [])}
        recent_counts: dict[str, int] = {}
        recent_texts: dict[str, str] = {}
        if ctx.recent is not None:
            answer = await ctx.recent.query(project_id, RecordQuery(service=args.service, limit=0))
            recent_counts, recent_texts = answer.counts.by_template, answer.counts.templates
        ids = list(dict.fromkeys([*recent_counts, *sorted(learnt, key=lambda t: -learnt[t].cluster_size)]))
        if args.template_ids is not None:
            wanted = {miner.resolve(t) if miner is not None else t for t in args.template_ids}
            ids = [t for t in ids if t in wanted or t in args.template_ids]
        found = Found(
            counts={"templates": len(ids), "recent_records": sum(recent_counts.get(t, 0) for t in ids)}
        )
        for template_id in ids:
            match = learnt.get(template_id)
            text = match.template if match is not None else recent_texts[template_id]
            recent, total = (
                recent_counts.get(template_id, 0),
                match.cluster_size if match is not None else None,
            )
            citation = Citation.of("template", project_id, template_id, text)
            found.samples.append(
                Sample(
                    text=f"{recent} recent, {total if total is not None else '?'} in all: {text}",
                    citation=citation,
                    fields={"template_id": template_id, "recent": recent, "total": total},
                )
            )
            if match is None:
                found.stored[citation.id] = {"template_id": template_id, "template": text, "recent": recent}
        return found
