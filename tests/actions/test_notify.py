"""Notify-only: the message goes back to the workflow; the action sends nothing."""

from __future__ import annotations

from tests.actions.conftest import MakeContext
from vigil.actions import ActionPolicy, ActionStep, execute, inverse, plan


async def test_notify_hands_the_message_back_under_the_default_policy(make_context: MakeContext) -> None:
    step = ActionStep(action="notify", params={"message": "checkout is restarting", "severity": "warning"})
    async with make_context(ActionPolicy()) as ctx:
        dry = await plan(step, ctx)
        result = await execute(step, ctx, "k1")
    assert dry.description == "notify (warning): checkout is restarting"
    assert dry.refused is None
    assert result.status == "done"
    assert result.details == {"message": "checkout is restarting", "severity": "warning"}
    assert inverse(step, result) is None
