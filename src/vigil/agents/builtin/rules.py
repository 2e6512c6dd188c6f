"""The `rules` engine: offline, deterministic analysis of evidence against the knowledge base.

Every evidence item is classified by the most specific failure pattern whose signals occur in its
template, samples or attributes. Items of the same pattern form a finding, weighted by
records * severity * specificity (* how loud the records were logged); the heaviest finding is the
analysis's conclusion and the others are mentioned after it. When no pattern matches, the analysis
says so (`known=False`) and suggests how to investigate instead of guessing a cause.

Evidence text is only searched and quoted, never formatted, compiled or executed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from vigil.agents.builtin.knowledge import KNOWLEDGE_BASE, FailurePattern
from vigil.agents.builtin.models import Analysis, Citation, Evidence, EvidenceItem, Severity

__all__ = ["Match", "RulesEngine"]

_LEVELS: tuple[Severity, ...] = ("informational", "warning", "critical")
# One critical record outweighs three warning records, a warning record three informational ones.
_SEVERITY_WEIGHT: dict[Severity, float] = {"informational": 1.0, "warning": 3.0, "critical": 9.0}
FATAL = 21  # OTel severity numbers
ERROR = 17
WARN = 13
BROAD_SERVICES = 3
"""A finding in this many services is raised one severity level."""
LOUD_RECORDS = 1000
"""A finding with this many records is raised one severity level."""
MAX_TEXT_CHARS = 4096
"""Longer samples and attribute values are searched on their start only, to bound the cost."""
CITATIONS_PER_FINDING = 10
SECONDARY_IN_SUMMARY = 3
TOP_UNKNOWN = 3
QUOTE_CHARS = 120
UNKNOWN_CONFIDENCE = 0.1


@dataclass(frozen=True, slots=True)
class Match:
    """Why an evidence item was classified: the pattern, the text it matched and where."""

    pattern: FailurePattern
    rank: int
    snippet: str
    where: str


@dataclass(slots=True)
class _Finding:
    match: Match
    hits: list[tuple[EvidenceItem, Match]] = field(default_factory=list)
    weight: float = 0.0
    count: int = 0

    @property
    def pattern(self) -> FailurePattern:
        return self.match.pattern

    @property
    def items(self) -> list[EvidenceItem]:
        return [item for item, _ in self.hits]


class RulesEngine:
    """`builtin:error-summary`'s default engine."""

    name = "rules"

    def __init__(self, patterns: Sequence[FailurePattern] = KNOWLEDGE_BASE) -> None:
        # Most specific first, so the first pattern that matches an item is the best one.
        order = sorted(range(len(patterns)), key=lambda i: (-patterns[i].specificity, i))
        self._patterns = tuple(patterns[i] for i in order)

    async def analyze(self, evidence: Evidence) -> Analysis:
        return self.analyze_sync(evidence)

    def analyze_sync(self, evidence: Evidence) -> Analysis:
        """The analysis, synchronously (it needs no I/O)."""
        # Sorted first, so that neither the input order nor float summation order matters.
        items = sorted(evidence.items, key=_item_key)
        findings: dict[int, _Finding] = {}
        unmatched: list[EvidenceItem] = []
        for item in items:
            match = self.classify(item)
            if match is None:
                unmatched.append(item)
                continue
            finding = findings.setdefault(match.rank, _Finding(match))
            finding.hits.append((item, match))
            finding.count += item.count
            finding.weight += _weight(item, match.pattern)
        if not findings:
            return self._unknown(evidence, unmatched)
        ranked = sorted(findings.values(), key=lambda f: (-f.weight, -f.count, f.match.rank))
        return _known(evidence, ranked, unmatched, self.name)

    def classify(self, item: EvidenceItem) -> Match | None:
        """The most specific pattern that matches `item`, or None."""
        hay = _Haystack(item)
        for rank, pattern in enumerate(self._patterns):
            for key, regex in pattern.probes:
                if key not in hay.folded:
                    continue
                if regex is None:
                    at = hay.folded.find(key)
                    return Match(pattern, rank, hay.snippet(at, key), hay.where(at, folded=True))
                found = regex.search(hay.text)
                if found is not None:
                    return Match(pattern, rank, _quote(found.group(0), 80), hay.where(found.start()))
        return None

    def _unknown(self, evidence: Evidence, items: list[EvidenceItem]) -> Analysis:
        top = _top(items)
        severity, raised = _unknown_severity(items)
        if not items:
            summary = "No evidence to analyze."
        else:
            quoted = "; ".join(
                f'"{_quote(i.template)}" ({_plural(i.count, "record")} in {i.service})' for i in top
            )
            summary = (
                f"No known failure pattern matches {_plural(len(items), 'template')} "
                f"({_records(items)} in {_services(items)}); top: {quoted}"
            ) + (f"; severity raised: {raised}" if raised else "")
        return Analysis(
            summary=summary,
            severity=severity,
            error_type="Unknown",
            root_cause=f"Unknown: none of the {len(self._patterns)} failure patterns of the rules engine "
            "matches these templates, samples or attributes, so no cause can be named from them.",
            remediation=_investigation(items, top),
            notify=severity == "critical",
            confidence=UNKNOWN_CONFIDENCE if items else 0.0,
            services=evidence.services,
            records=evidence.records,
            evidence=_unexplained(items),
            engine=self.name,
            known=False,
        )


def _known(
    evidence: Evidence, ranked: list[_Finding], unmatched: list[EvidenceItem], engine: str
) -> Analysis:
    main, others = ranked[0], ranked[1:]
    levels = [_escalate(f.pattern.severity, f.items) for f in ranked]
    severity = max((level for level, _ in levels), key=_LEVELS.index)
    raised = next(
        ((f, why) for f, (level, why) in zip(ranked, levels, strict=True) if why and level == severity), None
    )
    explained = sum(f.count for f in ranked) / max(evidence.records, 1)
    parts = [
        f"{_services(main.items)}: {main.pattern.title} ({_records(main.items)}{_span(main.items)})",
        *(
            f"also {f.pattern.title} in {_services(f.items)} ({_records(f.items)})"
            for f in others[:SECONDARY_IN_SUMMARY]
        ),
    ]
    if len(others) > SECONDARY_IN_SUMMARY:
        parts.append(f"and {_plural(len(others) - SECONDARY_IN_SUMMARY, 'more finding')}")
    if unmatched:
        parts.append(f"{_plural(len(unmatched), 'other template')} ({_records(unmatched)}) not recognized")
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
                f"Also, for {f.pattern.title} in {_services(f.items)}: {f.pattern.remediation[0]}"
                for f in others[:2]
            ),
        ],
        notify=severity == "critical" or (main.pattern.notify and severity == "warning"),
        # Records no pattern explains make the conclusion less certain.
        confidence=round(main.pattern.confidence * (0.6 + 0.4 * explained), 2),
        services=evidence.services,
        records=evidence.records,
        evidence=[citation for f in ranked for citation in _citations(f)] + _unexplained(unmatched),
        engine=engine,
        known=True,
    )


def _top(items: list[EvidenceItem]) -> list[EvidenceItem]:
    return sorted(items, key=lambda i: (-i.count, _item_key(i)))[:TOP_UNKNOWN]


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


def _citations(finding: _Finding) -> list[Citation]:
    hits = sorted(finding.hits, key=lambda h: (-h[0].count, _item_key(h[0])))
    return [
        Citation(
            template_id=item.template_id,
            template=item.template,
            service=item.service,
            count=item.count,
            reason=f'{match.pattern.error_type}: matched "{match.snippet}" in the {match.where}',
        )
        for item, match in hits[:CITATIONS_PER_FINDING]
    ]


class _Haystack:
    """An item's texts joined by newlines (which no probe crosses), as is and in lower case."""

    __slots__ = ("folded", "labels", "parts", "text")

    def __init__(self, item: EvidenceItem) -> None:
        self.labels = ["template"]
        self.parts = [item.template]
        for n, sample in enumerate(item.samples, 1):
            if sample[:MAX_TEXT_CHARS] not in self.parts:  # repeated samples say nothing new
                self.labels.append(f"sample {n}")
                self.parts.append(sample[:MAX_TEXT_CHARS])
        for key, value in sorted(item.attributes.items()):
            self.labels.append(f"attribute {key}")
            self.parts.append(f"{key}={value[:MAX_TEXT_CHARS]}")
        self.text = "\n".join(self.parts)
        self.folded = self.text.lower()

    def where(self, at: int, folded: bool = False) -> str:
        """The label of the part in which offset `at` (of `text`, or of `folded`) lies."""
        if folded and len(self.folded) != len(self.text):
            # Lower-casing changed some lengths (rare non-ASCII letters): offsets differ.
            starts = _starts(part.lower() for part in self.parts)
        else:
            starts = _starts(self.parts)
        return self.labels[bisect.bisect_right(starts, at) - 1]

    def snippet(self, at: int, key: str) -> str:
        if len(self.folded) != len(self.text):
            return key
        return _quote(self.text[at : at + len(key)], 80)


def _starts(texts: Iterable[str]) -> list[int]:
    starts: list[int] = []
    offset = 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + 1
    return starts


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
        f'Read the full records of the most frequent template "{_quote(first.template)}" in '
        f"{first.service}: the exception type, stack trace and attributes usually name the failing "
        "component.",
        f"Check what changed in {_services(items)} shortly before {_when(start)}: deploys, "
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


def _item_key(item: EvidenceItem) -> tuple[object, ...]:
    """A total order on items, so that ties never depend on the order of the input."""
    return (
        item.template_id,
        item.service,
        item.template,
        item.count,
        item.severity_number,
        item.first_seen,
        item.last_seen,
        item.samples,
        sorted(item.attributes.items()),
        item.trace_ids,
    )


def _services(items: Iterable[EvidenceItem]) -> str:
    names = sorted({i.service for i in items})
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:2])} and {len(names) - 2} more services"


def _records(items: Iterable[EvidenceItem]) -> str:
    return _plural(sum(i.count for i in items), "record")


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _span(items: list[EvidenceItem]) -> str:
    seconds = (max(i.last_seen for i in items) - min(i.first_seen for i in items)).total_seconds()
    if seconds < 1:
        return ""
    if seconds < 120:
        return f" in {round(seconds)} s"
    if seconds < 7200:
        return f" in {round(seconds / 60)} min"
    return f" in {seconds / 3600:.1f} h"


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _quote(text: str, limit: int = QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
