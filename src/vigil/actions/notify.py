"""`notify`: a message for the workflow to send to the incident's people (its ticket, its channel).

The action sends nothing itself, so it is always allowed, never a dry run, idempotent by nature, and
has no inverse: `execute` hands the message back in `details`.
"""

from __future__ import annotations

from vigil.actions.base import ActionName, ActionResult, ActionStep, DryRun
from vigil.actions.context import ActionContext
from vigil.actions.params import NotifyParams

__all__ = ["Notify"]


class Notify:
    name: ActionName = "notify"

    async def plan(self, step: ActionStep, ctx: ActionContext) -> DryRun:
        params = step.typed(NotifyParams)
        return DryRun(
            action=self.name,
            target="notify",
            description=f"notify ({params.severity}): {params.message}",
            state={"message": params.message, "severity": params.severity},
        )

    async def execute(self, step: ActionStep, ctx: ActionContext, idempotency_key: str) -> ActionResult:
        params = step.typed(NotifyParams)
        return ActionResult(
            action=self.name,
            status="done",
            target="notify",
            description=f"notify ({params.severity}): {params.message}",
            idempotency_key=idempotency_key,
            details={"message": params.message, "severity": params.severity},
        )
