"""The project's action policy: off and dry-run by default, targets named by glob."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.actions.conftest import MakeContext, kube_writes, policy_for
from tests.doubles.kubernetes_server import KubernetesServer
from vigil.actions import ActionPolicy, ActionRefused, ActionStep, execute, plan

RESTART = ActionStep(
    action="kubernetes.rollout_restart", params={"namespace": "shop", "deployment": "checkout"}
)


async def test_by_default_every_kind_is_off_and_nothing_is_contacted(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    async with make_context(policy_for(k8s)) as ctx:
        with pytest.raises(ActionRefused) as refused:
            await execute(RESTART, ctx, "k1")
        dry = await plan(RESTART, ctx)
    assert (
        refused.value.message
        == "kubernetes actions are off for this project: set actions.kubernetes.enabled: true"
    )
    assert refused.value.status == 403
    assert (dry.description, dry.refused) == ("restart deployment shop/checkout", refused.value.message)
    assert k8s.calls == []


async def test_enabled_is_still_a_dry_run_until_turned_off(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    async with make_context(policy_for(k8s, kubernetes={"enabled": True, "namespaces": ["shop"]})) as ctx:
        result = await execute(RESTART, ctx, "k1")
    assert result.status == "dry_run"
    assert result.description == "dry run: would restart deployment shop/checkout (3 replicas, revision 1)"
    assert kube_writes(k8s) == 0
    assert k8s.restarts("shop", "checkout") == 0


async def test_a_namespace_or_deployment_outside_the_allow_list_is_refused(
    k8s: KubernetesServer, make_context: MakeContext
) -> None:
    policy = policy_for(k8s, kubernetes={"enabled": True, "dry_run": False, "deployments": ["shop/cart*"]})
    async with make_context(policy) as ctx:
        with pytest.raises(ActionRefused) as refused:
            await execute(RESTART, ctx, "k1")
        allowed = await execute(
            RESTART.model_copy(update={"params": {"namespace": "shop", "deployment": "cart"}}), ctx, "k2"
        )
    assert refused.value.message == (
        "deployment shop/checkout is not allowed: add it to actions.kubernetes.deployments or its namespace "
        "to actions.kubernetes.namespaces (now: namespaces [], deployments ['shop/cart*'])"
    )
    assert allowed.status == "done"
    assert k8s.restarts("shop", "checkout") == 0


def test_globs_and_prefixes_match_whole_names() -> None:
    policy = ActionPolicy.model_validate(
        {
            "kubernetes": {"enabled": True, "namespaces": ["team-*"], "deployments": ["shop/checkout"]},
            "docker": {"enabled": True, "containers": ["web-*"]},
            "http": {
                "enabled": True,
                "url_prefixes": ["https://ops.example.com", "https://hooks.example.com/vigil/"],
            },
        }
    )
    assert policy.kubernetes.deployment_refusal("team-a", "anything") is None
    assert policy.kubernetes.deployment_refusal("shop", "checkout") is None
    assert policy.kubernetes.deployment_refusal("shop", "checkout-v2") is not None
    assert policy.kubernetes.namespace_refusal("shop") is None
    assert policy.kubernetes.namespace_refusal("payments") is not None
    assert policy.docker.container_refusal("web-1") is None
    assert policy.docker.container_refusal("/web-1") is None
    assert policy.docker.container_refusal("db") is not None
    assert policy.http.url_refusal("https://ops.example.com/restart?x=1") is None
    assert policy.http.url_refusal("https://ops.example.com") is None
    assert policy.http.url_refusal("https://hooks.example.com/vigil/run") is None
    for outside in (
        "https://ops.example.com.evil.net/",
        "https://ops.example.com@evil.net/",
        "http://ops.example.com/",
        "https://hooks.example.com/vigil/../admin",
        "https://hooks.example.com/vigil/%2e%2e/admin",
        "https://hooks.example.com/vigilant",
    ):
        assert policy.http.url_refusal(outside) is not None, outside
    refusal = policy.http.url_refusal("https://evil.net/x?token=s3cret")
    assert refusal is not None
    assert "s3cret" not in refusal


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"kubernetes": {"deployments": ["checkout"]}}, "is not namespace/name"),
        ({"kubernetes": {"enable": True}}, "Extra inputs are not permitted"),
        ({"http": {"url_prefixes": ["ops.example.com"]}}, "is not an http(s) URL prefix"),
        ({"kubernetes": {"connection": {"in_cluster": True, "host": "https://k8s"}}}, "give one of"),
        ({"kubernetes": {"connection": {"token": "t"}}}, "token goes with host"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(data: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError) as invalid:
        ActionPolicy.model_validate(data)
    assert problem in str(invalid.value)


def test_the_token_is_a_secret() -> None:
    policy = ActionPolicy.model_validate(
        {"kubernetes": {"connection": {"host": "https://k8s", "token": "s3cret"}}}
    )
    assert "s3cret" not in repr(policy)
    assert "s3cret" not in policy.model_dump_json()
