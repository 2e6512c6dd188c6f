"""Runbook steps are validated by their action's params model; inverses come from the before-state."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vigil.actions import ACTIONS, ActionContext, ActionPolicy, ActionResult, ActionStep, execute, inverse
from vigil.actions.params import PARAMS
from vigil.outbound import Outbound


def test_every_action_has_params_and_an_implementation() -> None:
    assert set(ACTIONS) == set(PARAMS)
    assert all(name == action.name for name, action in ACTIONS.items())


def test_params_are_checked_per_action_when_the_runbook_is_read() -> None:
    step = ActionStep.model_validate({"action": "docker.restart", "params": {"container": "web"}})
    assert step.params == {"container": "web", "stop_timeout_s": 10}
    assert step.required is True
    for action, params, problem in [
        ("kubernetes.scale", {"namespace": "shop", "deployment": "web"}, "replicas"),
        (
            "kubernetes.scale",
            {"namespace": "shop", "deployment": "web", "replicas": 2, "force": True},
            "force",
        ),
        ("kubernetes.rollout_restart", {"namespace": "Shop!", "deployment": "web"}, "namespace"),
        ("http.request", {"url": "https://x", "command": "rm -rf /"}, "command"),
        ("shell.run", {"command": "rm -rf /"}, "action"),
    ]:
        with pytest.raises(ValidationError) as invalid:
            ActionStep.model_validate({"action": action, "params": params})
        assert problem in str(invalid.value), (action, params)


def result(step: ActionStep, status: str, before: dict[str, object]) -> ActionResult:
    return ActionResult.model_validate(
        {
            "action": step.action,
            "status": status,
            "target": "t",
            "description": "d",
            "idempotency_key": "k",
            "before": before,
        }
    )


def test_inverse_only_for_what_was_done_and_can_be_taken_back() -> None:
    scale = ActionStep(
        action="kubernetes.scale", params={"namespace": "shop", "deployment": "web", "replicas": 5}
    )
    assert inverse(scale, result(scale, "done", {"replicas": 2})) == ActionStep(
        action="kubernetes.scale", params={"namespace": "shop", "deployment": "web", "replicas": 2}
    )
    for status in ("skipped", "failed", "dry_run"):
        assert inverse(scale, result(scale, status, {"replicas": 2})) is None
    restart = ActionStep(
        action="kubernetes.rollout_restart", params={"namespace": "shop", "deployment": "web"}
    )
    assert inverse(restart, result(restart, "done", {"revision": None})) is None
    pod = ActionStep(action="kubernetes.delete_pod", params={"namespace": "shop", "pod": "web-1"})
    assert inverse(pod, result(pod, "done", {"uid": "u"})) is None


async def test_an_idempotency_key_is_required() -> None:
    step = ActionStep(action="notify", params={"message": "m"})
    async with Outbound() as client:
        with pytest.raises(ValueError, match="an idempotency key is required"):
            await execute(step, ActionContext(policy=ActionPolicy(), http=client), " ")
