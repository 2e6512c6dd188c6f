"""`elasticsearch_search`: an Elasticsearch/OpenSearch `query_string` search, newest hits first."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field

from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext
from vigil.investigate.tools.http import call_json

MESSAGE_FIELDS = ("message", "log", "msg", "body", "event.original")


class ElasticsearchArgs(ToolArgs):
    query: str = Field(min_length=1, max_length=4_000, description="Lucene query string syntax.")
    index: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^[A-Za-z0-9*][A-Za-z0-9*,._+-]*$",
        description="Index names and patterns, comma-separated; default: the configured pattern.",
    )
    size: int = Field(default=200, ge=1, le=2_000, description="Hits fetched before the grep and caps.")
    time_field: str = Field(default="@timestamp", max_length=128)


class ElasticsearchSearch(Tool):
    name = "elasticsearch_search"
    description = "An Elasticsearch or OpenSearch query string search over log indices, newest first."
    args = ElasticsearchArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return ctx.settings.elasticsearch_url is not None

    async def gather(self, ctx: ToolContext, project_id: str, args: ElasticsearchArgs) -> Found:
        s = ctx.settings
        assert s.elasticsearch_url is not None
        index = args.index or s.elasticsearch_index
        headers: dict[str, str] = {}
        if s.elasticsearch_api_key is not None:
            headers["authorization"] = f"ApiKey {s.elasticsearch_api_key.get_secret_value()}"
        auth = None
        if s.elasticsearch_username and s.elasticsearch_password is not None:
            auth = (s.elasticsearch_username, s.elasticsearch_password.get_secret_value())
        answer = await call_json(
            ctx,
            "elasticsearch",
            "POST",
            f"{s.elasticsearch_url}/{index}/_search",
            json={
                "query": {"query_string": {"query": args.query}},
                "size": args.size,
                "sort": [{args.time_field: {"order": "desc", "unmapped_type": "date"}}],
            },
            headers=headers,
            auth=auth,
        )
        hits = (answer.get("hits") or {}) if isinstance(answer, dict) else {}
        total = hits.get("total")
        by_index: dict[str, int] = {}
        found = Found()
        for hit in hits.get("hits") or []:
            source: dict[str, Any] = hit.get("_source") or {}
            by_index[hit.get("_index", "")] = by_index.get(hit.get("_index", ""), 0) + 1
            message = next((str(source[f]) for f in MESSAGE_FIELDS if f in source), None)
            text = message if message is not None else orjson.dumps(source).decode()
            when = source.get(args.time_field)
            found.samples.append(
                Sample(
                    text=f"{when} {text}" if when else text,
                    fields={"index": hit.get("_index"), "id": hit.get("_id")},
                )
            )
        found.counts = {
            "hits": total.get("value") if isinstance(total, dict) else total,
            "returned": len(found.samples),
            "by_index": by_index,
        }
        return found
