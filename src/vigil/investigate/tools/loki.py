"""`loki_query`: a LogQL log query over a time range (default the last hour), newest lines first."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext, ToolFailed
from vigil.investigate.tools.http import call_json, time_range


class LokiArgs(ToolArgs):
    query: str = Field(min_length=1, max_length=4_000)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=500, ge=1, le=5_000, description="Lines fetched before the grep and caps.")


class LokiQuery(Tool):
    name = "loki_query"
    description = "A LogQL log query (stream selector and line filters) over a time range."
    args = LokiArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return ctx.settings.loki_url is not None

    async def gather(self, ctx: ToolContext, project_id: str, args: LokiArgs) -> Found:
        assert ctx.settings.loki_url is not None
        start, end = time_range(args.since, args.until)
        answer = await call_json(
            ctx,
            "loki",
            "GET",
            ctx.settings.loki_url + "/loki/api/v1/query_range",
            params={
                "query": args.query,
                "start": str(int(start.timestamp() * 1e9)),
                "end": str(int(end.timestamp() * 1e9)),
                "limit": args.limit,
                "direction": "backward",
            },
        )
        if not isinstance(answer, dict) or answer.get("status") != "success":
            raise ToolFailed(f"loki: unexpected answer {str(answer)[:200]}")
        lines: list[tuple[int, str, dict[str, str]]] = []
        by_stream: dict[str, int] = {}
        for stream in (answer.get("data") or {}).get("result") or []:
            labels = stream.get("stream") or {}
            name = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
            by_stream[name] = len(stream.get("values") or [])
            for at, line in stream.get("values") or []:
                lines.append((int(at), line, labels))
        lines.sort(key=lambda item: -item[0])
        found = Found(counts={"lines": len(lines), "streams": len(by_stream), "by_stream": by_stream})
        for at, line, labels in lines:
            when = datetime.fromtimestamp(at / 1e9, UTC).isoformat().replace("+00:00", "Z")
            found.samples.append(Sample(text=f"{when} {line}", fields={"labels": labels}))
        return found
