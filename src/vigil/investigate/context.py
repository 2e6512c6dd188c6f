"""`investigate_context`: the tools an investigation of one incident runs, always in the same
order with the same arguments, and their bounded, cited results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from vigil.agents.builtin.budget import BudgetExhausted
from vigil.errors import VigilError
from vigil.investigate.citations import Citation
from vigil.investigate.tools import TOOLS, ToolContext, ToolResult, run_tool

MAX_SERVICES = 5
BEFORE = timedelta(minutes=15)
AFTER = timedelta(minutes=5)
ERROR = 17


class ToolError(BaseModel):
    tool: str
    args: dict[str, Any]
    error: str


class InvestigationContext(BaseModel):
    project_id: str
    incident_id: str | None
    since: datetime
    until: datetime
    services: list[str]
    results: list[ToolResult] = Field(default_factory=list)
    errors: list[ToolError] = Field(default_factory=list)
    budget_exhausted: str | None = None
    """Set when the incident's token budget stopped the investigation before its last tool."""

    def citations(self) -> list[Citation]:
        """Every citation of every result, each once."""
        seen: dict[str, Citation] = {}
        for result in self.results:
            for citation in result.citations():
                seen.setdefault(citation.id, citation)
        return list(seen.values())

    def result(self, tool: str) -> list[ToolResult]:
        return [r for r in self.results if r.tool == tool]

    def brief(self) -> dict[str, Any]:
        """A small JSON-able account for a workflow's stored context: per call, its counts and
        citation; no samples."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "calls": [
                {"tool": r.tool, "citation": r.citation.id, "counts": r.counts, "matched": r.matched}
                for r in self.results
            ],
            "errors": [e.model_dump() for e in self.errors],
            "budget_exhausted": self.budget_exhausted,
        }

    def summary(self, max_samples: int = 10) -> str:
        """A compact text of counts and samples, each line with its citation, for a prompt."""
        lines: list[str] = []
        for result in self.results:
            lines.append(f"## {result.tool} {result.citation.label} [{result.citation.id}]")
            lines.append(f"counts: {result.counts}")
            for sample in result.samples[:max_samples]:
                cite = f" [{sample.citation.id}]" if sample.citation is not None else ""
                lines.append(f"- {sample.text}{cite}")
        for error in self.errors:
            lines.append(f"## {error.tool} failed: {error.error}")
        return "\n".join(lines)


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def incident_span(incident: dict[str, Any], now: datetime | None = None) -> tuple[datetime, datetime]:
    """From a quarter of an hour before the incident began to five minutes after it was last seen."""
    now = now or datetime.now(UTC)
    start = _time(incident.get("first_window_start")) or _time(incident.get("opened_at")) or now - BEFORE
    end = (
        _time(incident.get("last_seen_at"))
        or _time(incident.get("resolved_at"))
        or _time(incident.get("updated_at"))
        or now
    )
    return start - BEFORE, min(max(end, start) + AFTER, now + AFTER)


def _plan(
    ctx: ToolContext, incident: dict[str, Any], services: list[str], since: datetime, until: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """The calls, in order: Vigil's own data first, then what is configured outside."""
    s = ctx.settings
    window = {"since": since.isoformat(), "until": until.isoformat()}
    calls: list[tuple[str, dict[str, Any]]] = []
    for service in services:
        calls.append(("recent_records", {"service": service, "severity": ERROR, **window}))
    traces = [*(incident.get("trace_ids") or [])]
    traces += [
        t for sig in incident.get("signals") or [] for t in (sig.get("evidence") or {}).get("trace_ids") or []
    ]
    for trace_id in list(dict.fromkeys(traces))[:3]:
        calls.append(("recent_records", {"trace_id": trace_id, **window}))
    calls.append(("templates", {"template_ids": None}))
    if incident.get("id") and incident.get("kind") != "alert":
        calls.append(("signals", {"incident_id": incident["id"]}))
    for service in services:
        for query in s.prometheus_queries:
            calls.append(("prometheus_range", {"query": query.replace("{service}", service), **window}))
        calls.append(("loki_query", {"query": s.loki_selector.replace("{service}", service), **window}))
        if s.kubernetes_configured or ctx.kubernetes_factory is not None:
            calls.append(
                ("kubernetes", {"what": "pods", "label_selector": f"{s.kubernetes_service_label}={service}"})
            )
            calls.append(("kubernetes", {"what": "rollouts", "name": service}))
    if s.kubernetes_configured or ctx.kubernetes_factory is not None:
        calls.append(("kubernetes", {"what": "events"}))
    return [(tool, args) for tool, args in calls if TOOLS[tool].enabled(ctx)]


async def investigate_context(
    ctx: ToolContext,
    project_id: str,
    incident: dict[str, Any],
    *,
    incident_key: str | None = None,
    now: datetime | None = None,
) -> InvestigationContext:
    """Run the investigation's tools for an incident (its stored body: services, times, signals,
    trace ids) and return their bounded results with their citations. Tool failures are kept in
    `errors`; the incident's token budget (key `incident_key`, default `incident:<id>`) stops the
    run when spent. Never raises for a tool's sake."""
    since, until = incident_span(incident, now)
    services = [str(s) for s in (incident.get("services") or [])][:MAX_SERVICES]
    out = InvestigationContext(
        project_id=project_id,
        incident_id=incident.get("id"),
        since=since,
        until=until,
        services=services,
    )
    key = incident_key or (f"incident:{incident['id']}" if incident.get("id") else None)
    template_ids: list[str] = [
        str(s["template_id"]) for s in incident.get("signals") or [] if s.get("template_id")
    ]
    unsaved: list[tuple[Citation, dict[str, Any]]] = []
    for tool, args in _plan(ctx, incident, services, since, until):
        if tool == "templates":
            template_ids += [t for r in out.result("recent_records") for t in r.counts.get("by_template", {})]
            if not template_ids:
                continue
            args = {"template_ids": list(dict.fromkeys(template_ids))[:50]}
        try:
            out.results.append(await run_tool(ctx, tool, project_id, args, incident_key=key, unsaved=unsaved))
        except BudgetExhausted as exc:
            out.budget_exhausted = exc.message
            break
        except VigilError as exc:
            out.errors.append(ToolError(tool=tool, args=args, error=exc.message))
    await ctx.citations.put_many(unsaved)  # every call's citations in one write
    return out
