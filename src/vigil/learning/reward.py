"""What people's signals are worth. A rating or a helpful/not helpful is worth at most 1 either way;
an approval or a rejection at the workflow's gate, the primary signal, four times as much; the
outcome of what was done a little (it resolved, or it was rolled back)."""

from __future__ import annotations

APPROVAL_WEIGHT = 4.0
RATING_WEIGHT = 1.0
OUTCOME_REWARD = {"resolved": 1.0, "rolled_back": -1.0}
DECISION_REWARD = {"approved": APPROVAL_WEIGHT, "rejected": -APPROVAL_WEIGHT}


def feedback_reward(rating: int | None, helpful: bool | None) -> float:
    """A rating of 1 to 5 maps to -1 .. +1 (3 is neutral), helpful to +1 and not helpful to -1;
    given both, their mean: one person's one judgement weighs one rating."""
    parts = []
    if rating is not None:
        parts.append((rating - 3) / 2)
    if helpful is not None:
        parts.append(1.0 if helpful else -1.0)
    return RATING_WEIGHT * sum(parts) / len(parts) if parts else 0.0


def outcome(workflow_status: str | None, decision: str | None) -> str:
    """A case's outcome: rejected or approved at the gate until the workflow ends, then how it
    ended (resolved, rolled_back, escalated, ...); a rejection stays the outcome."""
    if decision == "rejected":
        return "rejected"
    if workflow_status in (None, "running", "waiting_approval"):
        return decision if decision in ("approved", "expired") else "open"
    return workflow_status
