"""The rules engine's analysis, revised by what past cases of the project teach: runbooks that
similar problems' people approved move up, those they rejected move down, a plan rejected for the
same problem (with no new evidence since) is not proposed again; hypotheses are re-ranked alike.
Every analysis is then kept as a case to learn from, written with the analysis' record."""

from __future__ import annotations

import logging
from typing import Any

from vigil.learning.advice import Advice, advise
from vigil.learning.features import from_incident
from vigil.learning.store import LearningStore, NewCase
from vigil.store.repo import Store
from vigil.workflow.runbooks import MatchContext, Runbook, score

log = logging.getLogger(__name__)

CONFIDENCE_PER_BONUS = 0.1
NOT_PROPOSED_CONFIDENCE = 0.0


async def revise(
    store: Store,
    project_id: str,
    workflow_id: str,
    incident: dict[str, Any],
    runbooks: list[Runbook],
    context: MatchContext,
    analysis: dict[str, Any],
    chosen: Runbook | None,
) -> tuple[dict[str, Any], Runbook | None, NewCase]:
    """The analysis and runbook after learning, and the case to record with them. Learning that
    fails (its tables unreadable) leaves the analysis as it was: it must never stop a workflow."""
    learning = LearningStore(store)
    features = from_incident(incident)
    try:
        advice = advise(features, await learning.cases(project_id, leave_out=workflow_id))
        analysis, chosen = rerank(incident, runbooks, context, analysis, chosen, advice)
    except Exception:
        log.exception("learning skipped", extra={"workflow": workflow_id})
    case = NewCase(
        store,
        project_id,
        workflow_id,
        str(incident.get("id") or ""),
        features,
        chosen.id if chosen else None,
        hypothesis_of(analysis) or (chosen.spec.title if chosen else ""),
    )
    return analysis, chosen, case


def hypothesis_key(hypothesis: Any) -> str:
    if isinstance(hypothesis, dict):
        for key in ("error_type", "cause", "root_cause", "summary"):
            if hypothesis.get(key):
                return str(hypothesis[key])
        return ""
    return str(hypothesis or "")


def hypothesis_of(analysis: dict[str, Any]) -> str:
    """What the analysis believes is wrong: its cause, or its first hypothesis."""
    own = next((str(analysis[k]) for k in ("error_type", "root_cause") if analysis.get(k)), "")
    hypotheses = analysis.get("hypotheses") or []
    return own or (hypothesis_key(hypotheses[0]) if hypotheses else "")


def rerank(
    incident: dict[str, Any],
    runbooks: list[Runbook],
    context: MatchContext,
    analysis: dict[str, Any],
    chosen: Runbook | None,
    advice: Advice,
) -> tuple[dict[str, Any], Runbook | None]:
    by_id = {r.id: r for r in runbooks}
    named = incident.get("runbook_id")
    ids = [named] if named else [i for i in analysis.get("candidates") or [] if i in by_id]

    def base(runbook_id: str) -> float:
        if runbook_id == named:
            return 0.0
        met = score(by_id[runbook_id].spec.match, context)
        return float(met or 0)

    blocked = [i for i in ids if i in advice.blocked]
    allowed = [i for i in ids if i in by_id and i not in advice.blocked]
    order = sorted(allowed, key=lambda i: (-(base(i) + advice.bonus(i)), ids.index(i)))
    learned: dict[str, Any] = {
        "similar_cases": advice.described(),
        "bonus": {i: round(advice.bonus(i), 4) for i in ids if advice.bonus(i)},
        "not_proposed": [
            {
                "runbook_id": i,
                "rejected_in": advice.blocked[i].workflow_id,
                "incident_id": advice.blocked[i].incident_id,
            }
            for i in blocked
        ],
    }
    revised = {**analysis, "learned": learned}
    _rerank_hypotheses(revised, advice)
    new = by_id[order[0]] if order else None
    before = chosen.id if chosen else None
    if not learned["similar_cases"] and not blocked:
        return revised, chosen
    reasons = _reasons(advice, blocked, new, before)
    learned["changed"] = (new.id if new else None) != before
    revised["candidates"] = order
    revised["runbook_id"] = new.id if new else None
    if new is None:
        revised["confidence"] = NOT_PROPOSED_CONFIDENCE
    else:
        moved = revised["confidence"] + CONFIDENCE_PER_BONUS * advice.bonus(new.id)
        revised["confidence"] = round(max(0.05, min(0.95, moved)), 3)
    if reasons:
        revised["summary"] = f"{'; '.join(reasons)} (before learning: {analysis['summary']})"
    return revised, new


def _reasons(advice: Advice, blocked: list[str], new: Runbook | None, before: str | None) -> list[str]:
    reasons = [
        f"runbook {i!r} not proposed: rejected for this problem in workflow "
        f"{advice.blocked[i].workflow_id!r}, with no new evidence since"
        for i in blocked
    ]
    if new is not None and new.id != before:
        support = [s for s in advice.similar if s.item.runbook_id == new.id and s.item.reward > 0]
        if support:
            reasons.append(f"runbook {new.id!r} chosen: {len(support)} similar past case(s) rewarded it")
        elif before in blocked:
            reasons.append(f"runbook {new.id!r} proposed instead")
        else:
            reasons.append(f"runbook {new.id!r} chosen: similar past cases rated {before!r} down")
    elif new is None and blocked:
        reasons.append("no other runbook matches: a person must decide")
    return reasons


def _rerank_hypotheses(analysis: dict[str, Any], advice: Advice) -> None:
    hypotheses = analysis.get("hypotheses")
    if not isinstance(hypotheses, list) or len(hypotheses) < 2:
        return
    bonus = [advice.hypothesis_bonus(hypothesis_key(h)) for h in hypotheses]
    order = sorted(range(len(hypotheses)), key=lambda i: (-bonus[i], i))
    if order != list(range(len(hypotheses))):
        analysis["hypotheses"] = [hypotheses[i] for i in order]
        analysis["learned"]["hypotheses_reordered"] = True
