"""The `rules` engine: offline, deterministic analysis of evidence against the knowledge base.

Every evidence item is classified by the most specific failure pattern whose signals occur in its
template, samples or attributes, or by its shape (one single-row query repeated many times within
few traces is an N+1). Items of the same pattern form a finding, weighted by
records * severity * specificity (* how loud the records were logged). `judgement` then decides:
the cause when the evidence decides one, with a confidence that reflects the evidence's strength;
otherwise the analysis says it does not know (`known=False`) and why, and suggests how to
investigate instead of guessing a cause.

Evidence text is only searched and quoted, never formatted, compiled or executed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vigil.agents.builtin.evidence_text import (
    Haystack,
    item_key,
    plural,
    quote,
    records,
    services,
    span,
    when,
)
from vigil.agents.builtin.judgement import ERROR, Finding, Verdict, judge
from vigil.agents.builtin.knowledge import KNOWLEDGE_BASE, FailurePattern
from vigil.agents.builtin.models import Analysis, Citation, Evidence, EvidenceItem, Severity

__all__ = ["Match", "RulesEngine"]

_LEVELS: tuple[Severity, ...] = ("informational", "warning", "critical")
# One critical record outweighs three warning records, a warning record three informational ones.
_SEVERITY_WEIGHT: dict[Severity, float] = {"informational": 1.0, "warning": 3.0, "critical": 9.0}
FATAL = 21  # OTel severity numbers
WARN = 13
BROAD_SERVICES = 3
"""A finding in this many services is raised one severity level."""
LOUD_RECORDS = 1000
"""A finding with this many records is raised one severity level."""
CITATIONS_PER_FINDING = 10
SECONDARY_IN_SUMMARY = 3
TOP_UNKNOWN = 3
N_PLUS_ONE_PER_TRACE = 10
"""A single-row query run this many times per trace, on average, is an N+1."""
MAX_TRACES = 5
"""Evidence keeps this many trace ids per item: with as many, the count per trace is unknown."""
# A single-row lookup: SELECT ... FROM ... WHERE <column> = <value or placeholder> (bounded).
_LOOKUP = re.compile(
    r"\bselect\b.{1,600}?\bfrom\b.{1,300}?\bwhere\b.{1,200}?(?:=|\bin\b) ?(?:\$\d|\?|<\*>|'?[\w-]{1,40}'?)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Match:
    """Why an evidence item was classified: the pattern, the text it matched and where."""

    pattern: FailurePattern
    rank: int
    snippet: str
    where: str


class RulesEngine:
    """`builtin:error-summary`'s default engine."""

    name = "rules"

    def __init__(self, patterns: Sequence[FailurePattern] = KNOWLEDGE_BASE) -> None:
        # Most specific first, so the first pattern that matches an item is the best one.
        order = sorted(range(len(patterns)), key=lambda i: (-patterns[i].specificity, i))
        self._patterns = tuple(patterns[i] for i in order)
        self._n_plus_one = next(
            ((rank, p) for rank, p in enumerate(self._patterns) if p.error_type == "NPlusOneQueries"), None
        )

    async def analyze(self, evidence: Evidence) -> Analysis:
        return self.analyze_sync(evidence)

    def analyze_sync(self, evidence: Evidence) -> Analysis:
        """The analysis, synchronously (it needs no I/O)."""
        # Sorted first, so that neither the input order nor float summation order matters.
        items = sorted(evidence.items, key=item_key)
        findings: dict[int, Finding] = {}
        unmatched: list[EvidenceItem] = []
        for item in items:
            match = self.classify(item)
            if match is None:
                unmatched.append(item)
                continue
            finding = findings.setdefault(match.rank, Finding(match.pattern, match.rank))
            finding.hits.append((item, match.snippet, match.where))
            finding.count += item.count
            finding.weight += _weight(item, match.pattern)
            finding.evidence += item.count * match.pattern.specificity * _loudness(item)
        if not findings:
            return self._unknown(evidence, unmatched)
        ranked = sorted(findings.values(), key=lambda f: (-f.weight, -f.count, f.rank))
        verdict = judge(ranked)
        if verdict.main is None:
            return self._undecided(evidence, ranked, unmatched, verdict)
        return _known(evidence, verdict, ranked, unmatched, self.name)

    def classify(self, item: EvidenceItem) -> Match | None:
        """The most specific pattern that matches `item`, or None."""
        shaped = self._shape(item)
        if shaped is not None:
            return shaped
        hay = Haystack(item)
        for rank, pattern in enumerate(self._patterns):
            for key, regex in pattern.probes:
                if key not in hay.folded:
                    continue
                if regex is None:
                    at = hay.folded.find(key)
                    return Match(pattern, rank, hay.snippet(at, key), hay.where(at, folded=True))
                found = regex.search(hay.text)
                if found is not None:
                    return Match(pattern, rank, quote(found.group(0), 80), hay.where(found.start()))
        return None

    def _shape(self, item: EvidenceItem) -> Match | None:
        """An N+1: one single-row lookup, many times per trace (trace ids say which request ran it)."""
        traces = len(item.trace_ids)
        if self._n_plus_one is None or not 0 < traces < MAX_TRACES:
            return None
        if item.count / traces < N_PLUS_ONE_PER_TRACE:
            return None
        found = _LOOKUP.search(item.template) or next(
            (m for s in item.samples if (m := _LOOKUP.search(s[:2000]))), None
        )
        if found is None:
            return None
        rank, pattern = self._n_plus_one
        per_trace = item.count // traces
        return Match(pattern, rank, f"{quote(found.group(0), 60)} ({per_trace} times per trace)", "template")

    def _unknown(self, evidence: Evidence, items: list[EvidenceItem]) -> Analysis:
        why = (
            f"none of the {len(self._patterns)} failure patterns of the rules engine matches these "
            "templates, samples or attributes, so no cause can be named from them"
        )
        return _unknown_analysis(evidence, items, [], why, UNKNOWN_CONFIDENCE, self.name)

    def _undecided(
        self, evidence: Evidence, ranked: list[Finding], unmatched: list[EvidenceItem], verdict: Verdict
    ) -> Analysis:
        cited = [c for f in ranked for c in _citations(f)]
        items = [i for f in ranked for i in f.items] + unmatched
        return _unknown_analysis(evidence, items, cited, verdict.reason, verdict.confidence, self.name)


UNKNOWN_CONFIDENCE = 0.1


def _unknown_analysis(
    evidence: Evidence,
    items: list[EvidenceItem],
    cited: list[Citation],
    why: str,
    confidence: float,
    engine: str,
) -> Analysis:
    top = _top(items)
    severity, raised = _unknown_severity(items)
    if not items:
        summary = "No evidence to analyze."
    else:
        quoted = "; ".join(f'"{quote(i.template)}" ({plural(i.count, "record")} in {i.service})' for i in top)
        opening = "No known failure pattern matches" if not cited else f"No cause decided ({why}) from"
        summary = (
            f"{opening} {plural(len(items), 'template')} ({records(items)} in {services(items)}); "
            f"top: {quoted}"
        ) + (f"; severity raised: {raised}" if raised else "")
    return Analysis(
        summary=summary,
        severity=severity,
        error_type="Unknown",
        root_cause=f"Unknown: {why}.",
        remediation=_investigation(items, top),
        notify=severity == "critical",
        confidence=confidence if items else 0.0,
        services=evidence.services,
        records=evidence.records,
        evidence=cited
        + _unexplained([i for i in items if not any(c.template_id == i.template_id for c in cited)]),
        engine=engine,
        known=False,
    )


def _known(
    evidence: Evidence, verdict: Verdict, ranked: list[Finding], unmatched: list[EvidenceItem], engine: str
) -> Analysis:
    main = verdict.main
    assert main is not None
    others = [f for f in ranked if f is not main]
    ordered = [main, *others]
    levels = [_escalate(f.pattern.severity, f.items) for f in ordered]
    severity = max((level for level, _ in levels), key=_LEVELS.index)
    raised = next(
        ((f, why) for f, (level, why) in zip(ordered, levels, strict=True) if why and level == severity), None
    )
    parts = [
        f"{services(main.items)}: {main.pattern.title} ({records(main.items)}{span(main.items)})",
        *(
            f"also {f.pattern.title} in {services(f.items)} ({records(f.items)})"
            for f in others[:SECONDARY_IN_SUMMARY]
        ),
    ]
    if len(others) > SECONDARY_IN_SUMMARY:
        parts.append(f"and {plural(len(others) - SECONDARY_IN_SUMMARY, 'more finding')}")
    if unmatched:
        parts.append(f"{plural(len(unmatched), 'other template')} ({records(unmatched)}) not recognized")
    if raised is not None:
        finding, why = raised
        parts.append(f"severity raised: {why}" + ("" if finding is main else f" ({finding.pattern.title})"))
    return Analysis(
        summary="; ".join(parts),
        severity=severity,
        error_type=main.pattern.error_type,
        root_cause=main.pattern.root_cause,
        remediation=[
            *main.pattern.remediation,
            *(
                f"Also, for {f.pattern.title} in {services(f.items)}: {f.pattern.remediation[0]}"
                for f in others[:2]
            ),
        ],
        notify=severity == "critical" or (main.pattern.notify and severity == "warning"),
        confidence=round(verdict.confidence * _explained(ranked, unmatched), 2),
        services=evidence.services,
        records=evidence.records,
        evidence=[citation for f in ordered for citation in _citations(f)] + _unexplained(unmatched),
        engine=engine,
        known=True,
    )


def _explained(ranked: list[Finding], unmatched: list[EvidenceItem]) -> float:
    """Errors no pattern explains make the conclusion less certain (healthy records do not)."""
    explained = sum(f.count for f in ranked)
    severe = sum(i.count for i in unmatched if i.severity_number == 0 or i.severity_number >= WARN)
    return 0.6 + 0.4 * explained / (explained + severe)


def _citations(finding: Finding) -> list[Citation]:
    hits = sorted(finding.hits, key=lambda h: (-h[0].count, item_key(h[0])))
    return [
        Citation(
            template_id=item.template_id,
            template=item.template,
            service=item.service,
            count=item.count,
            reason=f'{finding.pattern.error_type}: matched "{snippet}" in the {where}',
        )
        for item, snippet, where in hits[:CITATIONS_PER_FINDING]
    ]


def _top(items: list[EvidenceItem]) -> list[EvidenceItem]:
    return sorted(items, key=lambda i: (-i.count, item_key(i)))[:TOP_UNKNOWN]


def _unexplained(items: list[EvidenceItem]) -> list[Citation]:
    return [
        Citation(
            template_id=i.template_id,
            template=i.template,
            service=i.service,
            count=i.count,
            reason="no known failure pattern matched; among the most frequent such templates",
        )
        for i in _top(items)
    ]


def _weight(item: EvidenceItem, pattern: FailurePattern) -> float:
    return item.count * _SEVERITY_WEIGHT[pattern.severity] * pattern.specificity * _loudness(item)


def _loudness(item: EvidenceItem) -> float:
    # What the service itself logged as DEBUG or INFO counts less than its errors; 0 is unset.
    number = item.severity_number
    if number == 0 or number >= ERROR:
        return 1.0
    return 0.5 if number >= WARN else 0.25


def _unknown_severity(items: list[EvidenceItem]) -> tuple[Severity, str]:
    """Without a pattern, the records' own levels decide, escalated per template: unrelated
    templates in several services are no evidence of one broad failure."""
    by_template: dict[str, list[EvidenceItem]] = {}
    for item in items:
        by_template.setdefault(item.template, []).append(item)
    severity: Severity = "informational"
    raised = ""
    for group in by_template.values():
        top = max(i.severity_number for i in group)
        # Unset (0) counts as an error: these records reached an error-summary agent.
        level, why = _escalate("warning" if top >= ERROR or top == 0 else "informational", group)
        if _LEVELS.index(level) > _LEVELS.index(severity) or (level == severity and why and not raised):
            severity, raised = level, why
    return severity, raised


def _escalate(base: Severity, items: list[EvidenceItem]) -> tuple[Severity, str]:
    """The severity of a finding given its volume and breadth, and why it differs from `base`."""
    if not items:
        return base, ""
    top = max(i.severity_number for i in items)
    if top >= FATAL:
        return "critical", "FATAL records" if base != "critical" else ""
    services = len({i.service for i in items})
    records = sum(i.count for i in items)
    level = _LEVELS.index(base)
    reasons = []
    if services >= BROAD_SERVICES:
        reasons.append(f"{services} services affected")
    if records >= LOUD_RECORDS:
        reasons.append(f"{records:,} records")
    if reasons and level < len(_LEVELS) - 1:
        return _LEVELS[level + 1], " and ".join(reasons)
    if not reasons and 0 < top < WARN and level > 0:
        return _LEVELS[level - 1], ""
    return base, ""


def _investigation(items: list[EvidenceItem], top: list[EvidenceItem]) -> list[str]:
    if not top:
        return ["Nothing to investigate: the evidence holds no records."]
    first = top[0]
    start = min(i.first_seen for i in items)
    steps = [
        f'Read the full records of the most frequent template "{quote(first.template)}" in '
        f"{first.service}: the exception type, stack trace and attributes usually name the failing "
        "component.",
        f"Check what changed in {services(items)} shortly before {when(start)}: deploys, "
        "configuration, feature flags, dependency incidents.",
    ]
    traces = sorted({t for i in top for t in i.trace_ids})
    if traces:
        steps.append(f"Follow trace {traces[0]} to see which operation and dependency failed.")
    steps.append(
        "If this problem recurs, add a failure pattern for it to the knowledge base, or analyze it "
        "with a model-backed engine."
    )
    return steps
