"""How sure the rules engine may be: which finding is the cause, whether the evidence decides it,
and a confidence that grows with the strength of the evidence.

Findings of symptoms (timeouts, resets, 5xx, unhandled exceptions) never decide: many causes
produce them. Of the causes found, one that another found cause explains (an OOM kill explains a
crash loop) is that cause's consequence, not a rival. The best evidenced of the remaining "root"
findings (records, weighed by how loud they were logged and how specific the pattern is, not by
how bad the failure would be) is the conclusion only when it outweighs its rivals together by
`DOMINANCE`; otherwise the logs do not decide between them, and the engine says so.

The confidence is the pattern's own reliability, scaled by the evidence: how many records (up to
`FULL_RECORDS`), how many distinct templates and services corroborate it, how severe the records
are, and how much of the causal weight it carries against its rivals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vigil.agents.builtin.knowledge import FailurePattern
from vigil.agents.builtin.models import EvidenceItem

DOMINANCE = 2.0
"""The conclusion's weight must be at least this many times its rivals' together."""
FULL_RECORDS = 20
"""This many records are all the volume a finding needs for full support."""
FULL_CORROBORATION = 3
"""Distinct templates and services beyond the first that give full corroboration."""
ERROR = 17
WARN = 13


@dataclass(slots=True)
class Finding:
    """The evidence items one pattern explains, with what matched in each."""

    pattern: FailurePattern
    rank: int
    hits: list[tuple[EvidenceItem, str, str]] = field(default_factory=list)
    """(item, snippet, where it matched)."""
    weight: float = 0.0
    """Records weighed by the pattern's severity: what the summary leads with."""
    evidence: float = 0.0
    """Records weighed by how loud they were logged and how specific the pattern is, not by how
    bad the failure would be: what decides between causes."""
    count: int = 0

    @property
    def items(self) -> list[EvidenceItem]:
        return [item for item, _, _ in self.hits]


@dataclass(frozen=True, slots=True)
class Verdict:
    main: Finding | None
    """The cause, or None when the evidence does not decide one."""
    rivals: list[Finding]
    confidence: float
    reason: str
    """Why there is no conclusion ("" when there is one)."""


def judge(ranked: list[Finding]) -> Verdict:
    """`ranked`: every finding, heaviest first."""
    causes = [f for f in ranked if not f.pattern.symptom and (f.pattern.quiet or not mentions(f))]
    if not causes:
        titles = ", ".join(f.pattern.title for f in ranked[:3])
        if all(mentions(f) for f in ranked):
            why = (
                f"the failure patterns it knows ({titles}) occur only in records logged below WARN, "
                "which mention them rather than report a failure"
            )
        else:
            why = f"the logs show only symptoms ({titles}) that many causes produce; the cause itself is not in them"
        return Verdict(None, [], 0.2, why)
    explained = {e for f in causes for e in f.pattern.explains if e != f.pattern.error_type}
    roots = [f for f in causes if f.pattern.error_type not in explained] or causes[:1]
    roots.sort(key=lambda f: (-f.evidence, -f.count, f.rank))
    main, rivals = roots[0], roots[1:]
    rival_weight = sum(f.evidence for f in rivals)
    if rival_weight and main.evidence < DOMINANCE * rival_weight:
        named = " and ".join(
            f"{f.pattern.title} ({f.count:,} record{'' if f.count == 1 else 's'})" for f in roots[:3]
        )
        return Verdict(
            None,
            roots,
            round(0.3 * main.evidence / (main.evidence + rival_weight), 2),
            f"the logs show competing causes, {named}, and do not decide between them",
        )
    share = main.evidence / (main.evidence + rival_weight)
    confidence = main.pattern.confidence * (0.5 + 0.5 * strength(main)) * share
    return Verdict(main, rivals, round(min(confidence, 0.99), 2), "")


def mentions(finding: Finding) -> bool:
    """Every record of the finding was logged as DEBUG or INFO (0 is unset, and counts as an error)."""
    return all(0 < i.severity_number < WARN for i in finding.items)


def strength(finding: Finding) -> float:
    """From 0 (a single debug line) to 1 (many severe records in several templates and services)."""
    items = finding.items
    volume = min(1.0, math.log1p(finding.count) / math.log1p(FULL_RECORDS))
    distinct = len({i.template_id for i in items}) + len({i.service for i in items}) - 2
    corroboration = min(1.0, distinct / FULL_CORROBORATION)
    top = max(i.severity_number for i in items)
    severity = 1.0 if top >= ERROR or top == 0 else 0.7 if top >= WARN else 0.4
    return 0.5 * volume + 0.2 * corroboration + 0.3 * severity
