"""The runbook an analysis recommends: only one the project configured, and only one that names
the analysis's cause among its `error_types` (a runbook that matches everything fits no cause)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from vigil.agents.builtin.models import Analysis
from vigil.workflow.runbooks import MatchContext, Runbook, ranked

RunbookSource = Callable[[str], Awaitable[list[Runbook]]]
"""The configured runbooks of a project, by its id."""


def fitting(analysis: Analysis, runbooks: Sequence[Runbook]) -> Runbook | None:
    if not analysis.known:
        return None
    context = MatchContext(
        error_types=[analysis.error_type],
        services=analysis.services,
        template_ids=sorted({c.template_id for c in analysis.evidence}),
    )
    for runbook, _ in ranked(list(runbooks), context):
        if analysis.error_type in runbook.spec.match.error_types:
            return runbook
    return None


def recommend(analysis: Analysis, runbooks: Sequence[Runbook]) -> Analysis:
    """The analysis with the runbook that fits it (or none); an engine's own choice is kept when
    it is one of the configured runbooks."""
    ids = {r.id for r in runbooks}
    if analysis.runbook_id is not None and analysis.runbook_id in ids:
        return analysis
    chosen = fitting(analysis, runbooks)
    return analysis.model_copy(update={"runbook_id": chosen.id if chosen else None})
