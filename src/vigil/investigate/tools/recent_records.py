"""`recent_records`: the project's recent records (the investigation window), redacted; counts by
service, severity and template first, then the newest records, each cited."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from vigil.investigate.citations import Citation
from vigil.investigate.records import MAX_QUERY_LIMIT, RecordQuery
from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext


class RecentRecordsArgs(ToolArgs):
    service: str | None = Field(default=None, max_length=256)
    since: datetime | None = None
    until: datetime | None = None
    severity: int | str | None = None
    template_id: str | None = Field(default=None, max_length=64)
    trace_id: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    scan_limit: int = Field(
        default=MAX_QUERY_LIMIT,
        ge=1,
        le=MAX_QUERY_LIMIT,
        description="Records fetched before the grep and caps.",
    )


class RecentRecordsTool(Tool):
    name = "recent_records"
    description = "Recent log records of the project (about the last hour), by service, time, severity, template, trace id."
    args = RecentRecordsArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return ctx.recent is not None

    async def gather(self, ctx: ToolContext, project_id: str, args: RecentRecordsArgs) -> Found:
        assert ctx.recent is not None
        query = RecordQuery.model_validate(
            {
                "service": args.service,
                "since": args.since,
                "until": args.until,
                "severity": args.severity,
                "template_id": args.template_id,
                "trace_id": args.trace_id,
                "limit": args.scan_limit,
            }
        )
        answer = await ctx.recent.query(project_id, query)
        found = Found(
            counts={
                **answer.counts.model_dump(),
                "scanned": answer.scanned,
                "scan_truncated": answer.truncated,
                "window_records": answer.window.records,
            }
        )
        for record in answer.records:
            service = (record.get("resourceAttributes") or {}).get("service.name", "")
            text = f"{record['timestamp']} {record['severityText'] or '-'} {service}: {record['body']}"
            citation = Citation.of("record", project_id, record["record_id"], text[:120])
            found.samples.append(
                Sample(
                    text=text,
                    citation=citation,
                    fields={
                        "template_id": record.get("template_id"),
                        "trace_id": record.get("traceId") or None,
                    },
                )
            )
            found.stored[citation.id] = {"record": record}
        return found
