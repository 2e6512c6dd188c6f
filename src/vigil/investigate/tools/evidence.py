"""`evidence`: the archived evidence of a signal (the windows' requests, statements, traces)."""

from __future__ import annotations

import orjson
from pydantic import Field

from vigil.investigate.citations import Citation
from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext


class EvidenceArgs(ToolArgs):
    fingerprint: str = Field(min_length=1, max_length=64)
    documents: int = Field(default=5, ge=1, le=50)


class EvidenceTool(Tool):
    name = "evidence"
    description = "Evidence archived for a signal fingerprint, newest window first."
    args = EvidenceArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return ctx.evidence is not None

    async def gather(self, ctx: ToolContext, project_id: str, args: EvidenceArgs) -> Found:
        assert ctx.evidence is not None
        documents = await ctx.evidence.get(project_id, args.fingerprint, args.documents)
        found = Found(counts={"documents": len(documents)})
        citation = Citation.of("evidence", project_id, args.fingerprint, f"evidence of {args.fingerprint}")
        for document in documents:
            found.samples.append(Sample(text=orjson.dumps(document).decode(), citation=citation))
        return found
