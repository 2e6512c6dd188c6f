"""Actions by name. Adding one is a params model in `params`, a class, and one line here."""

from __future__ import annotations

from vigil.actions.base import Action, ActionResult, ActionStep, DryRun
from vigil.actions.context import ActionContext
from vigil.actions.docker import DockerRestart
from vigil.actions.http import HttpRequest
from vigil.actions.kubernetes import RolloutRestart, RolloutUndo, Scale
from vigil.actions.kubernetes_pods import DeletePod
from vigil.actions.notify import Notify

__all__ = ["ACTIONS", "execute", "get_action", "plan"]

ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        RolloutRestart(),
        Scale(),
        RolloutUndo(),
        DeletePod(),
        DockerRestart(),
        HttpRequest(),
        Notify(),
    )
}


def get_action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise ValueError(f"unknown action {name!r}; known: {', '.join(sorted(ACTIONS))}") from None


async def plan(step: ActionStep, ctx: ActionContext) -> DryRun:
    """What `step` would do, from the system's current state; changes nothing."""
    return await get_action(step.action).plan(step, ctx)


async def execute(step: ActionStep, ctx: ActionContext, idempotency_key: str) -> ActionResult:
    """Run `step` once per `idempotency_key` (the same key on every attempt of a workflow step)."""
    if not idempotency_key.strip():
        raise ValueError("an idempotency key is required: the same one on every attempt of the step")
    return await get_action(step.action).execute(step, ctx, idempotency_key)
