"""Past cases as examples for the LLM engine's prompt: the project's most similar cases that people
rewarded (what worked) and those they rejected (what not to propose again without new evidence).
Only the same project's cases are ever read."""

from __future__ import annotations

import logging
from typing import Any

from vigil.agents.builtin.models import Evidence
from vigil.learning.advice import Advice, advise
from vigil.learning.features import from_evidence, from_incident
from vigil.learning.store import LearningStore
from vigil.masking import scrub
from vigil.store.repo import Store

log = logging.getLogger(__name__)

MAX_WORKED = 3
MAX_REJECTED = 2
COMMENT_CHARS = 300
MAX_COMMENTS = 2


class CaseExamples:
    """What the LLM engine calls for a batch's examples (`examples=CaseExamples(store)`)."""

    def __init__(self, store: Store) -> None:
        self._learning = LearningStore(store)

    async def __call__(self, evidence: Evidence) -> list[dict[str, Any]]:
        try:
            cases = await self._learning.held(evidence.project_id)
        except Exception:  # examples help; their absence must not stop an analysis
            log.exception("past cases not read", extra={"project": evidence.project_id})
            return []
        return described(advise(from_evidence(evidence), cases, similar=MAX_WORKED + MAX_REJECTED + 5))


def described(advice: Advice) -> list[dict[str, Any]]:
    """The judged ones among the similar cases, as the prompt shows them: what worked, then what
    was rejected."""
    worked = [s for s in advice.similar if s.item.reward > 0][:MAX_WORKED]
    rejected = [s for s in advice.similar if s.item.reward < 0][:MAX_REJECTED]
    return [
        {
            "verdict": "worked" if scored.item.reward > 0 else "rejected",
            "similarity": scored.similarity,
            "hypothesis": scored.item.hypothesis,
            "runbook": scored.item.runbook_id,
            "outcome": scored.item.outcome,
            "reward": round(scored.item.reward, 2),
            "comments": [scrub(c, COMMENT_CHARS) for c in scored.item.comments[-MAX_COMMENTS:]],
        }
        for scored in [*worked, *rejected]
    ]


async def incident_examples(
    store: Store, project_id: str, incident: dict[str, Any], *, leave_out: str | None = None
) -> list[dict[str, Any]]:
    """The same examples for an incident (an LLM analysis of a workflow's incident)."""
    cases = await LearningStore(store).held(project_id)
    similar = MAX_WORKED + MAX_REJECTED + 5
    return described(advise(from_incident(incident), cases, similar=similar, leave_out=leave_out))
