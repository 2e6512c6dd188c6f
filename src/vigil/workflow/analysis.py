"""The workflow's analysis of an incident: it investigates, then judges what it found.

1. `investigate_context` runs the investigation's tools in a fixed order (the recent error records
   of the incident's services around its time and of its traces, their templates, its signals,
   then what is configured outside), each bounded and charged to the incident's token budget.
2. The records found become evidence (as a batch's would) for the rules engine, which names the
   cause (error type, root cause, confidence) or says it does not know.
3. The runbook: the one the alert names wins; else the most specific runbook that matches the
   alert's labels, the signals and the error types (the rules engine's cause among them). When the
   analysis does not know the cause, a runbook that only names services (or nothing) is not
   proposed: nothing observed ties it to this problem.

With `analysis_engine: llm` (the workflow policy, else the settings), a model investigates further
with the same tools (`workflow.llm_analysis`); whatever stops it, the rules analysis answers, with
the reason. Every citation of the analysis is an id the investigation returned, which
`GET /api/v1/projects/{project_id}/citations/{id}` resolves.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from vigil.agents.builtin.budget import TokenBudget
from vigil.agents.builtin.evidence import build_evidence
from vigil.agents.builtin.models import Analysis, Evidence, EvidenceItem
from vigil.agents.builtin.rules import RulesEngine
from vigil.investigate.citations import Citation
from vigil.investigate.context import ERROR, InvestigationContext, investigate_context
from vigil.investigate.tools import ToolContext
from vigil.settings import LlmSettings
from vigil.workflow import diagnosis
from vigil.workflow.runbooks import MatchContext, Runbook, RunbookMatch, ranked

if TYPE_CHECKING:
    from vigil.agents.builtin.model_registry import LlmConfig

log = logging.getLogger(__name__)

Engine = Literal["rules", "llm"]
RECORDS_PER_TEMPLATE = 3
"""Records cited for each template the analysis rests on."""
MAX_CITATIONS = 40
MAX_EVIDENCE_ITEMS = 60
_RULES = RulesEngine()


def llm_config(settings: LlmSettings) -> LlmConfig:
    """The model the settings configure (pydantic-ai is imported only then: it takes seconds)."""
    from vigil.agents.builtin.model_registry import LlmConfig

    values: dict[str, object] = {
        "provider": settings.provider,
        "model": settings.model,
        "base_url": settings.base_url,
        "api_key": settings.api_key,
    }
    if settings.timeout_s is not None:
        values["timeout_s"] = settings.timeout_s
    return LlmConfig.model_validate(values)


@dataclass
class Analyst:
    """What the workflow's analysis uses, one per process: the investigation's tools, the default
    engine, and the model (built on first use) with the budget it is charged to."""

    tools: ToolContext | None
    engine: Engine = "rules"
    llm: LlmConfig | None = None
    budget: TokenBudget | None = None
    model: Any = None
    """A pydantic-ai model; None builds one from `llm` when a workflow first asks for it."""
    _open: AsyncExitStack = field(default_factory=AsyncExitStack)
    _entered: bool = False

    async def model_for_run(self) -> Any:
        if self.model is None:
            assert self.llm is not None
            from vigil.agents.builtin.model_registry import build_model

            self.model = build_model(self.llm)
        if not self._entered:
            await self._open.enter_async_context(self.model)
            self._entered = True
        return self.model

    async def aclose(self) -> None:
        """Close the tools' clients and the model's; safe twice."""
        self._entered = False
        await self._open.aclose()
        if self.tools is not None:
            await self.tools.aclose()


@dataclass
class Investigated:
    brief: dict[str, Any]
    analysis: dict[str, Any]
    chosen: Runbook | None
    match: MatchContext


async def investigate(
    analyst: Analyst | None,
    project_id: str,
    workflow_id: str,
    incident: dict[str, Any],
    runbooks: list[Runbook],
    engine: Engine | None = None,
) -> Investigated:
    """Investigate the incident and analyse what was found; never raises for a tool's or a
    model's sake (the analysis then says what it lacked)."""
    found: InvestigationContext | None = None
    problem = None
    if analyst is not None and analyst.tools is not None:
        try:
            found = await investigate_context(analyst.tools, project_id, incident)
        except Exception as exc:
            log.exception("investigation failed", extra={"workflow": workflow_id})
            problem = f"the investigation failed: {type(exc).__name__}: {exc}"
    else:
        problem = "no investigation tools in this process"
    evidence = await evidence_of(analyst.tools if analyst else None, project_id, workflow_id, found)
    verdict = await asyncio.to_thread(_RULES.analyze_sync, evidence) if evidence.items else None
    analysis, chosen = analyse(incident, runbooks, verdict, found)
    if problem:
        analysis["investigation_note"] = problem
    if (engine or (analyst.engine if analyst else "rules")) == "llm":
        from vigil.workflow.llm_analysis import llm_analyse

        analysis, chosen = await llm_analyse(
            analyst, project_id, workflow_id, incident, runbooks, found, analysis, chosen
        )
    brief = found.brief() if found is not None else {"calls": [], "errors": [], "note": problem}
    return Investigated(brief, analysis, chosen, match_context(incident, verdict))


async def evidence_of(
    tools: ToolContext | None, project_id: str, workflow_id: str, found: InvestigationContext | None
) -> Evidence:
    """The records the investigation returned, as the evidence of a batch: one item per service
    and template, counted over every record the tool matched (not only those it returned)."""
    if tools is None or found is None:
        return Evidence(project_id=project_id, request_id=workflow_id, items=[])
    calls = found.result("recent_records")
    ids = [s.citation.id for r in calls for s in r.samples if s.citation is not None]
    stored = await tools.citations.get_many(project_id, ids)
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for call in calls:
        for sample in call.samples:
            if sample.citation is None or sample.citation.id in seen or sample.citation.id not in stored:
                continue
            seen.add(sample.citation.id)
            record = dict(stored[sample.citation.id].get("record") or {})
            if record:
                records.append(record)
    evidence = build_evidence(project_id, workflow_id, records)
    items = {(i.service, i.template_id): i for i in evidence.items}
    for call in calls:
        service = call.args.get("service")
        if not service:
            continue  # a trace's records: the same again, by their trace
        texts = call.counts.get("templates") or {}
        for template_id, count in (call.counts.get("by_template") or {}).items():
            item = items.get((service, template_id))
            if item is not None:
                item.count = max(item.count, int(count))
            elif template_id in texts and len(items) < MAX_EVIDENCE_ITEMS:
                # matched, but none of its records was among those returned: its template speaks
                items[(service, template_id)] = EvidenceItem(
                    template_id=template_id,
                    template=str(texts[template_id]),
                    service=service,
                    count=max(1, int(count)),
                    first_seen=found.since,
                    last_seen=found.until,
                    severity_number=ERROR,
                )
    return evidence.model_copy(update={"items": list(items.values())})


def match_context(incident: dict[str, Any], cause: Analysis | None = None) -> MatchContext:
    signals = incident.get("signals") or []
    error_types = diagnosis.error_types(incident)
    if cause is not None and cause.known and cause.error_type not in error_types:
        error_types = sorted([*error_types, cause.error_type])
    return MatchContext(
        alert_labels=incident.get("labels") or {},
        services=incident.get("services") or [],
        signal_kinds=sorted({str(s.get("kind")) for s in signals if s.get("kind")}),
        template_ids=sorted({str(s.get("template_id")) for s in signals if s.get("template_id")}),
        error_types=error_types,
    )


def tied_to_the_problem(match: RunbookMatch) -> bool:
    """Whether the runbook names something observed of a problem, beyond where it happens."""
    return bool(match.alert_labels or match.error_types or match.template_ids or match.signal_kinds)


def analyse(
    incident: dict[str, Any],
    runbooks: list[Runbook],
    cause: Analysis | None = None,
    found: InvestigationContext | None = None,
) -> tuple[dict[str, Any], Runbook | None]:
    """The rules analysis: the cause the evidence decides (or "don't know"), the runbook the alert
    names or else the most specific one that matches, with a confidence that grows with how much
    of what is known it matches, and citations of what the investigation returned."""
    context = match_context(incident, cause)
    known = cause is not None and cause.known
    named = incident.get("runbook_id")
    chosen: Runbook | None = None
    if named:
        chosen = next((r for r in runbooks if r.id == named), None)
        confidence = 0.9 if chosen is not None else 0.0
        why = f"the alert names runbook {named!r}" + ("" if chosen else ", which is not configured")
        candidates = [named]
    else:
        matches = [
            (r, s)
            for r, s in ranked(runbooks, context)
            if known or diagnosis_decides(context) or tied_to_the_problem(r.spec.match)
        ]
        candidates = [r.id for r, _ in matches]
        if matches:
            chosen, score = matches[0]
            confidence = min(0.95, 0.5 + 0.15 * score)
            if known and cause is not None and cause.error_type in chosen.spec.match.error_types:
                confidence = max(confidence, cause.confidence)
            why = f"runbook {chosen.id!r} matches {score} of what is known ({_known(context)})"
        else:
            confidence = cause.confidence if known and cause is not None else 0.0
            why = f"no configured runbook matches ({_known(context)})"
    analysis: dict[str, Any] = {
        "engine": "rules",
        "summary": f"{cause_line(cause)} {why[0].upper()}{why[1:]}.",
        "confidence": round(confidence, 3),
        "runbook_id": chosen.id if chosen else None,
        "candidates": candidates,
        "error_types": context.error_types,
        **cause_fields(cause),
        "citations": citations(incident, cause, found),
    }
    if found is not None and found.budget_exhausted:
        analysis["budget_exhausted"] = found.budget_exhausted
        analysis["summary"] += (
            f" The investigation stopped early (token budget spent): {found.budget_exhausted}"
        )
    return analysis, chosen


def diagnosis_decides(context: MatchContext) -> bool:
    """The detector's signals name a failure family (a slow query, an N+1, a classified template)."""
    return bool(context.error_types)


def cause_line(cause: Analysis | None) -> str:
    if cause is None:
        return "Don't know the cause: the investigation found no error records of the incident's services."
    if not cause.known:
        return f"Don't know the cause: {cause.root_cause.removeprefix('Unknown: ')}"
    return f"{cause.error_type}: {cause.root_cause}"


def cause_fields(cause: Analysis | None) -> dict[str, Any]:
    if cause is None:
        return {
            "known": False,
            "error_type": "Unknown",
            "root_cause": "Unknown: no error records of the incident's services were found.",
            "cause_confidence": 0.0,
            "remediation": [],
            "records": 0,
        }
    return {
        "known": cause.known,
        "error_type": cause.error_type,
        "root_cause": cause.root_cause,
        "cause_confidence": cause.confidence,
        "severity": cause.severity,
        "remediation": cause.remediation[:8],
        "records": cause.records,
    }


def citations(
    incident: dict[str, Any], cause: Analysis | None, found: InvestigationContext | None
) -> list[dict[str, Any]]:
    """What the analysis rests on, each an id the investigation returned: the templates the rules
    engine cited, a few of their records, the calls that found them, the incident's signals."""
    if found is None:
        return []
    known = {c.id: c for c in found.citations()}
    wanted: list[str] = []
    cited_templates = [c.template_id for c in (cause.evidence if cause is not None else [])]
    for template_id in dict.fromkeys(cited_templates):
        wanted.append(f"template:{template_id}")
        for call in found.result("recent_records"):
            records = [
                s.citation.id
                for s in call.samples
                if s.citation is not None and s.fields.get("template_id") == template_id
            ]
            if records:
                wanted.append(call.citation.id)
                wanted += records[:RECORDS_PER_TEMPLATE]
    for call in found.result("signals"):
        wanted += [s.citation.id for s in call.samples if s.citation is not None]
    wanted += [r.citation.id for r in found.results]  # every call looked at, found or not
    return [_cited(known[c]) for c in dict.fromkeys(wanted) if c in known][:MAX_CITATIONS]


def _cited(citation: Citation) -> dict[str, Any]:
    return {"id": citation.id, "kind": citation.kind, "label": citation.label}


def _known(context: MatchContext) -> str:
    parts = [f"{k}={v}" for k, v in sorted(context.alert_labels.items()) if k in ("alertname", "service")]
    parts += [f"service {s}" for s in context.services] + [f"signal {k}" for k in context.signal_kinds]
    parts += [f"error {e}" for e in context.error_types]
    return ", ".join(parts) or "nothing"
