"""The investigation tools, keyed by name, and `run_tool`, the one way to call one.

`run_tool` validates the arguments, refuses a tool that is off (an external one without its URL),
gathers, applies the bounds (counts over everything first, then a grep, a line cap and a byte
cap on the samples), stores the call and its result as a `query:` citation (and each returned
record as a `record:` citation), and counts the result's estimated tokens against the incident's
budget: when they would go over it, the samples are left out and the counts kept.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from vigil.agents.builtin.budget import BudgetExhausted
from vigil.errors import NotFound, ValidationFailed
from vigil.investigate.citations import Citation, content_key
from vigil.investigate.tools.base import (
    Found,
    Tool,
    ToolArgs,
    ToolContext,
    ToolDisabled,
    ToolFailed,
    ToolResult,
    bound,
    estimate_tokens,
)
from vigil.investigate.tools.elasticsearch import ElasticsearchSearch
from vigil.investigate.tools.evidence import EvidenceTool
from vigil.investigate.tools.incidents import IncidentsTool
from vigil.investigate.tools.kubernetes import KubernetesTool
from vigil.investigate.tools.loki import LokiQuery
from vigil.investigate.tools.prometheus import PromQuery, PromRangeQuery
from vigil.investigate.tools.recent_records import RecentRecordsTool
from vigil.investigate.tools.replays import ReplaysTool
from vigil.investigate.tools.signals import SignalsTool
from vigil.investigate.tools.templates import TemplatesTool
from vigil.pipeline.redact import RedactionSpec, Redactor

__all__ = [
    "TOOLS",
    "Found",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "ToolDisabled",
    "ToolFailed",
    "ToolResult",
    "enabled_tools",
    "run_tool",
]

_DEFAULT_REDACTOR = Redactor(RedactionSpec())

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        RecentRecordsTool(),
        TemplatesTool(),
        SignalsTool(),
        IncidentsTool(),
        EvidenceTool(),
        ReplaysTool(),
        PromQuery(),
        PromRangeQuery(),
        LokiQuery(),
        ElasticsearchSearch(),
        KubernetesTool(),
    )
}


def enabled_tools(ctx: ToolContext) -> list[str]:
    return [name for name, tool in TOOLS.items() if tool.enabled(ctx)]


async def run_tool(
    ctx: ToolContext,
    name: str,
    project_id: str,
    args: dict[str, Any] | ToolArgs | None = None,
    *,
    incident_key: str | None = None,
    unsaved: list[tuple[Citation, dict[str, Any]]] | None = None,
) -> ToolResult:
    """Run tool `name` for a project within its bounds; with `incident_key`, its output counts
    against that incident's token budget. Its citations are saved, or, given `unsaved`, added to it
    for the caller to save with others in one write."""
    tool = TOOLS.get(name)
    if tool is None:
        raise NotFound(f"no tool {name!r}; tools: {', '.join(TOOLS)}")
    if not tool.enabled(ctx):
        raise ToolDisabled(f"tool {name!r} is off: its URL is not configured")
    try:
        parsed = args if isinstance(args, tool.args) else tool.args.model_validate(args or {})
    except ValidationError as exc:
        raise ValidationFailed(f"arguments of tool {name!r}: {exc.errors(include_url=False)}") from None
    found = await tool.gather(ctx, project_id, parsed)
    _redact(ctx, project_id, found)
    s = ctx.settings
    max_lines = parsed.max_lines if parsed.max_lines is not None else s.max_lines
    max_bytes = parsed.max_bytes if parsed.max_bytes is not None else s.max_bytes
    samples, matched, truncated = bound(found, parsed.grep, max_lines, max_bytes)
    arguments = parsed.model_dump(mode="json", exclude_none=True)
    result = ToolResult(
        tool=name,
        project_id=project_id,
        args=arguments,
        citation=Citation.of("query", project_id, "pending", name),
        counts=found.counts,
        total=len(found.samples),
        matched=matched,
        samples=samples,
        truncated=truncated,
    )
    result.tokens = estimate_tokens(result.model_dump_json())
    if incident_key is not None and ctx.budget is not None:
        await _charge(ctx, result, project_id, incident_key)
    body = result.model_dump(mode="json", exclude={"citation"})
    key = content_key(project_id, name, arguments, body["counts"], body["samples"])
    result.citation = Citation.of("query", project_id, key, f"{name} {_short(arguments)}")
    stored: list[tuple[Citation, dict[str, Any]]] = [(result.citation, {"result": body})]
    for sample in result.samples:
        if sample.citation is not None and sample.citation.id in found.stored:
            stored.append((sample.citation, found.stored[sample.citation.id]))
    if unsaved is None:
        await ctx.citations.put_many(stored)
    else:
        unsaved += stored
    return result


def _redact(ctx: ToolContext, project_id: str, found: Found) -> None:
    """Whatever a tool found (an external system's lines included) is redacted before the grep
    sees it and before it can reach a person or a model."""
    redactor = ctx.recent.redactor(project_id) if ctx.recent is not None else _DEFAULT_REDACTOR
    for sample in found.samples:
        sample.text, _ = redactor.redact_text(sample.text)
        if sample.fields:
            sample.fields = redactor.redact_payload(sample.fields)


async def _charge(ctx: ToolContext, result: ToolResult, project_id: str, incident_key: str) -> None:
    assert ctx.budget is not None
    try:
        await ctx.budget.check(project_id, incident_key, result.tokens)
    except BudgetExhausted as exc:
        # counts are worth more than samples: keep them when the samples do not fit
        result.samples = []
        result.truncated = True
        result.budget_note = f"samples left out: {exc.message}"
        result.tokens = estimate_tokens(result.model_dump_json())
        await ctx.budget.check(project_id, incident_key, result.tokens)
    await ctx.budget.record(project_id, incident_key, result.tokens)


def _short(arguments: dict[str, Any]) -> str:
    text = orjson.dumps({k: v for k, v in arguments.items() if k not in ("max_lines", "max_bytes")}).decode()
    return text if len(text) <= 150 else text[:147] + "..."
