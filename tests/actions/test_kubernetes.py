"""Deployment actions against the Kubernetes double, which changes state as the API server would."""

from __future__ import annotations

from typing import Any

import pytest

from tests.actions.conftest import TOKEN, MakeContext, kube_writes, policy_for
from tests.doubles.kubernetes_server import REVISION, KubernetesServer
from vigil.actions import ActionStep, execute, inverse, plan
from vigil.actions.kubernetes_api import NOTE_PREFIX, RESTARTED_AT, noted_patch, read_deployment

LIVE = {"enabled": True, "dry_run": False, "namespaces": ["shop"]}


def step(action: str, **params: Any) -> ActionStep:
    return ActionStep.model_validate({"action": action, "params": {"namespace": "shop", **params}})


def pods_of(k8s: KubernetesServer, name: str) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in k8s.list_objects("pods", "shop")
        if p["metadata"]["name"].startswith(name)
    }


def template_annotations(k8s: KubernetesServer, name: str = "checkout") -> dict[str, str]:
    return k8s.get("deployments", "shop", name)["spec"]["template"]["metadata"].get("annotations") or {}


async def test_the_dry_run_of_a_restart_says_exactly_what_and_reads_without_writing(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        dry = await plan(step("kubernetes.rollout_restart", deployment="checkout"), ctx)

    assert dry.description == "restart deployment shop/checkout (3 replicas, revision 1)"
    assert dry.target == "shop/checkout"
    assert dry.state == {"replicas": 3, "ready_replicas": 3, "revision": 1, "images": ["shop:1.0"]}
    assert dry.refused is None
    assert k8s.count_calls("get", "deployments", namespace="shop", name="checkout") == 1
    assert kube_writes(k8s) == 0


async def test_restart_sets_restarted_at_once_per_key_and_its_inverse_rolls_back(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    restart = step("kubernetes.rollout_restart", deployment="checkout")
    pods_before = pods_of(k8s, "checkout-")
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        done = await execute(restart, ctx, "incident-7/step-1")
        again = await execute(restart, ctx, "incident-7/step-1")

        assert done.status == "done"
        assert done.description == "restart deployment shop/checkout (3 replicas, revision 1)"
        assert done.before == {"revision": 1, "restarted_at": None}
        assert done.details["state"]["revision"] == 2
        assert k8s.restarts("shop", "checkout") == 1
        assert RESTARTED_AT in template_annotations(k8s)
        assert template_annotations(k8s)["vigil.dev/action-key"] == "incident-7/step-1"
        assert len(pods_of(k8s, "checkout-")) == 3
        assert not pods_before & pods_of(k8s, "checkout-")
        assert (again.status, again.repeated, again.before) == ("done", True, done.before)
        assert k8s.count_calls("patch", "deployments", name="checkout") == 1

        back = inverse(restart, done)
        assert back == step("kubernetes.rollout_undo", deployment="checkout", to_revision=1)
        undone = await execute(back, ctx, "incident-7/step-1/inverse")

    assert undone.status == "done"
    assert RESTARTED_AT not in template_annotations(k8s)
    assert k8s.get("deployments", "shop", "checkout")["metadata"]["annotations"][REVISION] == "3"
    assert k8s.restarts("shop", "checkout") == 2


async def test_a_new_key_restarts_again(k8s: KubernetesServer, make_context: MakeContext) -> None:
    restart = step("kubernetes.rollout_restart", deployment="checkout")
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        await execute(restart, ctx, "incident-7/step-1")
        second = await execute(restart, ctx, "incident-8/step-1")
    assert (second.status, second.repeated) == ("done", False)
    assert k8s.restarts("shop", "checkout") == 2


async def test_scale_records_the_replicas_before_and_its_inverse_scales_back(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    scale = step("kubernetes.scale", deployment="checkout", replicas=5)
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        dry = await plan(scale, ctx)
        done = await execute(scale, ctx, "k1")
        assert len(pods_of(k8s, "checkout-")) == 5
        again = await execute(scale, ctx, "k1")
        back = inverse(scale, again)
        assert back is not None
        restored = await execute(back, ctx, "k1/inverse")

    assert dry.description == "scale deployment shop/checkout from 3 to 5 replicas (revision 1)"
    assert (done.status, done.before["replicas"]) == ("done", 3)
    assert (again.status, again.repeated, again.before["replicas"]) == ("done", True, 3)
    assert back == step("kubernetes.scale", deployment="checkout", replicas=3)
    assert restored.status == "done"
    assert k8s.get("deployments", "shop", "checkout")["spec"]["replicas"] == 3
    assert len(pods_of(k8s, "checkout-")) == 3
    assert k8s.count_calls("patch", "deployments", name="checkout") == 2


async def test_scale_to_the_current_replicas_is_skipped_with_nothing_to_undo(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    scale = step("kubernetes.scale", deployment="checkout", replicas=3)
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        result = await execute(scale, ctx, "k1")
    assert (result.status, result.description) == (
        "skipped",
        "scale deployment shop/checkout: already at 3 replicas",
    )
    assert inverse(scale, result) is None
    assert kube_writes(k8s) == 0


async def test_rollout_undo_puts_the_previous_replicasets_template_back_once(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    k8s.set_image("shop", "checkout", "shop:1.1")
    undo = step("kubernetes.rollout_undo", deployment="checkout")
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        dry = await plan(undo, ctx)
        done = await execute(undo, ctx, "k1")
        again = await execute(undo, ctx, "k1")
        back = inverse(undo, done)
        assert back is not None
        redone = await execute(back, ctx, "k1/inverse")
        deployment_after_inverse = k8s.get("deployments", "shop", "checkout")

    assert (
        dry.description
        == "roll back deployment shop/checkout from revision 2 (shop:1.1) to revision 1 (shop:1.0)"
    )
    assert (done.status, done.before) == ("done", {"revision": 2})
    assert done.details["state"]["images"] == ["shop:1.0"]
    assert (again.status, again.repeated) == ("done", True)
    assert back == step("kubernetes.rollout_undo", deployment="checkout", to_revision=2)
    assert redone.status == "done"
    assert deployment_after_inverse["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:1.1"
    assert deployment_after_inverse["metadata"]["annotations"][REVISION] == "4"
    images = {p["spec"]["containers"][0]["image"] for p in k8s.list_objects("pods", "shop")}
    assert images == {"shop:1.1", "cart:1.0"}
    assert k8s.count_calls("patch", "deployments", name="checkout") == 2


async def test_undo_to_a_revision_not_in_history_fails_for_good(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        first = await execute(step("kubernetes.rollout_undo", deployment="checkout"), ctx, "k1")
        missing = await execute(
            step("kubernetes.rollout_undo", deployment="checkout", to_revision=9), ctx, "k2"
        )
    assert (first.status, first.retryable) == ("failed", False)
    assert first.description == "roll back deployment shop/checkout: no revision before 1 (revisions [1])"
    assert missing.description == "roll back deployment shop/checkout: no revision 9 (revisions [1])"
    assert kube_writes(k8s) == 0


async def test_api_failures_are_classified_and_never_show_the_token(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    restart = step("kubernetes.rollout_restart", deployment="checkout")
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        k8s.fail_next(1, 503)
        unavailable = await execute(restart, ctx, "k1")
        k8s.fail_next(1, 409)
        conflict = await execute(restart, ctx, "k1")
        missing = await execute(step("kubernetes.scale", deployment="nope", replicas=1), ctx, "k2")
    async with make_context(
        policy_for(kubernetes=LIVE | {"connection": {"host": k8s.base_url, "token": "wrong-token-secret"}})
    ) as ctx:
        unauthorized = await execute(restart, ctx, "k1")

    assert (unavailable.status, unavailable.retryable, unavailable.details) == (
        "failed",
        True,
        {"status": 503},
    )
    assert unavailable.description.startswith("kubernetes: reading deployment shop/checkout: HTTP 503")
    assert (conflict.retryable, conflict.details) == (True, {"status": 409})
    assert (missing.retryable, missing.description) == (
        False,
        'kubernetes: reading deployment shop/nope: HTTP 404 deployments.apps "nope" not found',
    )
    assert (unauthorized.retryable, unauthorized.details) == (False, {"status": 401})
    for result in (unavailable, conflict, missing, unauthorized):
        assert TOKEN not in result.model_dump_json()
        assert "wrong-token-secret" not in result.model_dump_json()
    assert k8s.restarts("shop", "checkout") == 0


async def test_a_change_made_since_the_read_is_a_retryable_conflict_not_a_blind_write(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        seen = await read_deployment(ctx, "shop", "checkout")
        k8s.set_image("shop", "checkout", "shop:1.1")
        try:
            await noted_patch(ctx, seen, "k1", "kubernetes.scale", {"replicas": 3}, [])
        except Exception as exc:
            error = exc
    assert getattr(error, "status", None) == 409
    assert getattr(error, "retryable", None) is True
    assert not any(
        k.startswith(NOTE_PREFIX)
        for k in k8s.get("deployments", "shop", "checkout")["metadata"]["annotations"]
    )


async def test_a_slow_api_server_is_a_retryable_timeout(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    policy = policy_for(k8s, kubernetes=LIVE, call_timeout_s=0.3)
    async with make_context(policy) as ctx:
        k8s.delay_next(1, seconds=1.5)
        result = await execute(step("kubernetes.rollout_restart", deployment="checkout"), ctx, "k1")
    assert (result.status, result.retryable) == ("failed", True)
    assert result.description == "kubernetes: reading deployment shop/checkout: no answer within 0.3s"


async def test_notes_are_pruned_to_the_newest(k8s: KubernetesServer, make_context: MakeContext) -> None:
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        for n in range(12):
            await execute(step("kubernetes.scale", deployment="checkout", replicas=4 + n % 2), ctx, f"k{n}")
        latest = await execute(step("kubernetes.scale", deployment="checkout", replicas=5), ctx, "k11")
    notes = [
        k
        for k in k8s.get("deployments", "shop", "checkout")["metadata"]["annotations"]
        if k.startswith(NOTE_PREFIX)
    ]
    assert len(notes) == 10
    assert latest.repeated


async def test_a_kubeconfig_connection(
    k8s: KubernetesServer, make_context: MakeContext, tmp_path: Any
) -> None:
    kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig")
    policy = policy_for(kubernetes=LIVE | {"connection": {"kubeconfig": str(kubeconfig)}})
    async with make_context(policy) as ctx:
        dry = await plan(step("kubernetes.scale", deployment="cart", replicas=2), ctx)
    assert dry.description == "scale deployment shop/cart from 1 to 2 replicas (revision 1)"


async def test_a_connection_that_cannot_be_loaded_fails_for_good(
    make_context: MakeContext, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    restart = step("kubernetes.rollout_restart", deployment="checkout")
    for connection, problem in (
        ({"in_cluster": True}, "kubernetes: cannot load the in-cluster config"),
        ({"kubeconfig": str(tmp_path / "missing")}, "kubernetes: cannot load the kubeconfig"),
    ):
        async with make_context(policy_for(kubernetes=LIVE | {"connection": connection})) as ctx:
            result = await execute(restart, ctx, "k1")
        assert (result.status, result.retryable) == ("failed", False)
        assert result.description.startswith(problem), result.description
