"""What past cases say about a new problem: which runbooks people approved or rejected for problems
like it, and which plans must not be proposed again.

A plan rejected for a problem is not proposed again for the same problem unless there is new
evidence: the same problem means the new one's exact features are all among the rejected one's
(and most of them); new evidence is a feature that was not there when it was rejected. A later
approval of the same plan for the same problem lifts the ban."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vigil.learning.corpus import Corpus
from vigil.learning.features import Features
from vigil.learning.similarity import Scored, jaccard
from vigil.learning.store import Case

SIMILAR_CASES = 5
SAME_PROBLEM = 0.5
"""The least overlap of exact features for two problems to count as the same one."""
MAX_BONUS = 2.0
"""The most a runbook's learned support moves it, in match criteria (either way)."""
APPROVED = frozenset({"approved", "resolved"})


@dataclass
class Advice:
    similar: list[Scored[Case]] = field(default_factory=list)
    blocked: dict[str, Case] = field(default_factory=dict)
    """Runbook id -> the case that rejected it for this same problem, with no new evidence since."""

    def bonus(self, runbook_id: str) -> float:
        """Past support of a runbook: each similar case's reward, by how alike it is, bounded."""
        total = sum(
            s.similarity * s.item.plan_reward for s in self.similar if s.item.runbook_id == runbook_id
        )
        return max(-MAX_BONUS, min(MAX_BONUS, total / 4))

    def hypothesis_bonus(self, hypothesis: str) -> float:
        key = hypothesis.strip().lower()
        total = sum(
            s.similarity * s.item.analysis_reward
            for s in self.similar
            if key and s.item.hypothesis.strip().lower() == key
        )
        return max(-MAX_BONUS, min(MAX_BONUS, total / 4))

    def described(self) -> list[dict[str, object]]:
        return [
            {
                "workflow_id": s.item.workflow_id,
                "incident_id": s.item.incident_id,
                "similarity": s.similarity,
                "runbook_id": s.item.runbook_id,
                "hypothesis": s.item.hypothesis,
                "outcome": s.item.outcome,
                "reward": round(s.item.reward, 4),
            }
            for s in self.similar
        ]


def evidence_of(features: Features) -> frozenset[str]:
    """What counts as evidence of a problem: its exact features, or its words when it has none."""
    return features.exact or frozenset(f"word:{t}" for t in features.tokens)


def same_problem_no_new_evidence(new: Features, old: Features) -> bool:
    now, then = evidence_of(new), evidence_of(old)
    return bool(now) and now <= then and jaccard(now, then) >= SAME_PROBLEM


def advise(
    features: Features,
    cases: Sequence[Case] | Corpus[Case],
    *,
    similar: int = SIMILAR_CASES,
    leave_out: str | None = None,
) -> Advice:
    """`cases` oldest first, all of one project (a corpus of them by workflow id, as
    `LearningStore.held` keeps them), but the workflow `leave_out`."""
    if not isinstance(cases, Corpus):
        cases, leave_out = corpus_of([c for c in cases if c.workflow_id != leave_out]), None
    advice = Advice(similar=cases.most_similar(features, limit=similar, leave_out=leave_out))
    # only cases holding all the new problem's evidence can be the same problem with no new evidence
    if features.exact:
        alike = cases.holding(features.exact)
    else:
        alike = [c for c in cases.holding(frozenset(), frozenset(features.tokens)) if not c.features.exact]
    for case in alike:
        if case.workflow_id == leave_out:
            continue
        if case.runbook_id is None or not same_problem_no_new_evidence(features, case.features):
            continue
        if case.outcome == "rejected":
            advice.blocked[case.runbook_id] = case
        elif case.outcome in APPROVED or case.decision == "approved":
            advice.blocked.pop(case.runbook_id, None)
    return advice


def corpus_of(cases: Sequence[Case]) -> Corpus[Case]:
    """Keyed by position: a list may hold a workflow's case twice."""
    corpus: Corpus[Case] = Corpus()
    for n, case in enumerate(cases):
        corpus.add(str(n), case, case.features)
    return corpus
