"""Deleting a deployment's pod against the Kubernetes double, which replaces it as a ReplicaSet does."""

from __future__ import annotations

import pytest

from tests.actions.conftest import MakeContext, kube_writes, policy_for
from tests.doubles.kubernetes_server import KubernetesServer
from vigil.actions import ActionRefused, ActionStep, execute, inverse, plan

LIVE = {"enabled": True, "dry_run": False, "deployments": ["shop/checkout"]}


def delete(pod: str, namespace: str = "shop") -> ActionStep:
    return ActionStep(action="kubernetes.delete_pod", params={"namespace": namespace, "pod": pod})


def checkout_pods(k8s: KubernetesServer) -> list[str]:
    return sorted(
        p["metadata"]["name"]
        for p in k8s.list_objects("pods", "shop")
        if p["metadata"]["name"].startswith("checkout-")
    )


async def test_delete_pod_dry_run_names_its_deployment_and_deletes_nothing(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    victim = checkout_pods(k8s)[0]
    k8s.crash_loop("shop", victim, restarts=4)
    async with make_context(policy_for(k8s, kubernetes=LIVE | {"dry_run": True})) as ctx:
        dry = await plan(delete(victim), ctx)
        result = await execute(delete(victim), ctx, "k1")
    expected = f"delete pod shop/{victim} of deployment shop/checkout (Running, 4 restarts); its ReplicaSet starts a new one"
    assert dry.description == expected
    assert (dry.state["deployment"], dry.state["restarts"]) == ("checkout", 4)
    assert (result.status, result.description) == ("dry_run", f"dry run: would {expected}")
    assert kube_writes(k8s) == 0
    assert victim in checkout_pods(k8s)


async def test_delete_pod_once_then_already_gone(k8s: KubernetesServer, make_context: MakeContext) -> None:
    victim = checkout_pods(k8s)[0]
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        done = await execute(delete(victim), ctx, "k1")
        again = await execute(delete(victim), ctx, "k1")
    assert done.status == "done"
    assert done.before["uid"]
    assert victim not in checkout_pods(k8s)
    assert len(checkout_pods(k8s)) == 3
    assert (again.status, again.description) == ("skipped", f"pod shop/{victim}: already gone")
    assert k8s.count_calls("delete", "pods", name=victim) == 1
    [call] = [c for c in k8s.calls if c.verb == "delete"]
    assert call.body["preconditions"] == {"uid": done.before["uid"]}
    assert inverse(delete(victim), done) is None


async def test_only_pods_of_allowed_deployments_are_deleted(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    k8s.add_pod("debug", "shop")
    cart_pod = next(
        p["metadata"]["name"]
        for p in k8s.list_objects("pods", "shop")
        if p["metadata"]["name"].startswith("cart-")
    )
    async with make_context(policy_for(k8s, kubernetes=LIVE)) as ctx:
        with pytest.raises(ActionRefused) as standalone:
            await execute(delete("debug"), ctx, "k1")
        with pytest.raises(ActionRefused) as other:
            await execute(delete(cart_pod), ctx, "k2")
        with pytest.raises(ActionRefused) as elsewhere:
            await execute(delete("api-1", namespace="payments"), ctx, "k3")
        dry = await plan(delete(cart_pod), ctx)
    assert standalone.value.message == (
        "pod shop/debug belongs to no deployment: only deployments' pods may be deleted (their ReplicaSet replaces them)"
    )
    assert other.value.message.startswith(
        "deployment shop/cart is not allowed: add it to actions.kubernetes.deployments"
    )
    assert elsewhere.value.message.startswith("namespace payments is not allowed")
    assert dry.refused == other.value.message
    assert kube_writes(k8s) == 0
    assert k8s.count_calls("get", "pods", namespace="payments") == 0
