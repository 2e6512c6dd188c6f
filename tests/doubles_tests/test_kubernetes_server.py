"""The Kubernetes double against the official `kubernetes` client: what a runbook and an investigator call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.doubles.kubernetes_server import REVISION, KubernetesServer

TOKEN = "kube-token"


@pytest.fixture
def k8s() -> Iterator[KubernetesServer]:
    with KubernetesServer(token=TOKEN) as server:
        server.add_deployment("web", "shop", image="shop:1.0", replicas=2)
        yield server


@pytest.fixture
def api(k8s: KubernetesServer) -> Iterator[client.ApiClient]:
    with client.ApiClient(k8s.configuration()) as api_client:
        yield api_client


def test_rollout_restart_is_a_template_annotation_patch_that_makes_new_pods(
    k8s: KubernetesServer, api: client.ApiClient
) -> None:
    apps = client.AppsV1Api(api)
    before = {p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod("shop").items}
    now = datetime.now(UTC).isoformat()
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}

    deployment = apps.patch_namespaced_deployment("web", "shop", patch)

    assert deployment.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == now
    assert deployment.metadata.generation == 2
    assert deployment.metadata.annotations[REVISION] == "2"
    assert deployment.status.observed_generation == 2
    assert k8s.restarts("shop", "web") == 1
    assert k8s.count_calls("patch", "deployments", namespace="shop", name="web") == 1
    [call] = [c for c in k8s.calls if c.verb == "patch"]
    assert call.content_type == "application/strategic-merge-patch+json"
    after = {
        p.metadata.name
        for p in client.CoreV1Api(api).list_namespaced_pod("shop", label_selector="app=web").items
    }
    assert len(after) == 2
    assert not after & before
    apps.patch_namespaced_deployment("web", "shop", {"metadata": {"labels": {"team": "a"}}})
    assert k8s.restarts("shop", "web") == 1


def test_scale_through_the_subresource_and_through_spec_replicas(
    k8s: KubernetesServer, api: client.ApiClient
) -> None:
    apps = client.AppsV1Api(api)
    scale = apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    assert scale.status.selector == "app=web"
    assert len(client.CoreV1Api(api).list_namespaced_pod("shop").items) == 4
    assert apps.read_namespaced_deployment_scale("web", "shop").status.replicas == 4

    apps.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 1}})
    assert apps.read_namespaced_deployment("web", "shop").status.replicas == 1
    assert len(client.CoreV1Api(api).list_namespaced_pod("shop").items) == 1
    assert k8s.count_calls("patch", "deployments", name="web", sub="scale") == 1

    with pytest.raises(ApiException) as refused:
        apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": -1}})
    assert refused.value.status == 422


def test_delete_pod_is_replaced_by_its_replicaset(k8s: KubernetesServer, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    victim = core.list_namespaced_pod("shop").items[0].metadata.name
    deleted = core.delete_namespaced_pod(victim, "shop")
    assert deleted.metadata.name == victim
    names = {p.metadata.name for p in core.list_namespaced_pod("shop").items}
    assert victim not in names
    assert len(names) == 2
    assert k8s.count_calls("delete", "pods", name=victim) == 1
    with pytest.raises(ApiException) as missing:
        core.delete_namespaced_pod(victim, "shop")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == f'pods "{victim}" not found'


def test_rollout_undo_patches_the_template_back_to_the_previous_replicaset(
    k8s: KubernetesServer, api: client.ApiClient
) -> None:
    k8s.set_image("shop", "web", "shop:1.1")
    apps = client.AppsV1Api(api)
    replica_sets = apps.list_namespaced_replica_set("shop", label_selector="app=web").items
    by_revision = sorted(replica_sets, key=lambda rs: int(rs.metadata.annotations[REVISION]))
    assert [rs.spec.template.spec.containers[0].image for rs in by_revision] == ["shop:1.0", "shop:1.1"]
    previous = api.sanitize_for_serialization(by_revision[-2].spec.template)
    previous["metadata"]["labels"].pop("pod-template-hash")

    apps.patch_namespaced_deployment(
        "web", "shop", [{"op": "replace", "path": "/spec/template", "value": previous}]
    )

    deployment = apps.read_namespaced_deployment("web", "shop")
    assert deployment.spec.template.spec.containers[0].image == "shop:1.0"
    assert deployment.metadata.annotations[REVISION] == "3"
    replica_sets = apps.list_namespaced_replica_set("shop", label_selector="app=web").items
    assert len(replica_sets) == 2
    images = {rs.spec.template.spec.containers[0].image: rs.spec.replicas for rs in replica_sets}
    assert images == {"shop:1.0": 2, "shop:1.1": 0}
    pods = client.CoreV1Api(api).list_namespaced_pod("shop").items
    assert {p.spec.containers[0].image for p in pods} == {"shop:1.0"}


def test_events_by_field_selector_and_logs_with_tail(k8s: KubernetesServer, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    pod = core.list_namespaced_pod("shop").items[0].metadata.name
    k8s.add_event(
        "shop", kind="Pod", name=pod, reason="BackOff", message="Back-off restarting failed container"
    )
    k8s.add_event("shop", kind="Pod", name="other", reason="Pulled", message="pulled", type="Normal")
    k8s.set_logs("shop", pod, "one\ntwo\nthree\n")

    events = core.list_namespaced_event(
        "shop", field_selector=f"involvedObject.name={pod},involvedObject.kind=Pod"
    )
    assert [(e.reason, e.type) for e in events.items] == [("BackOff", "Warning")]
    assert len(core.list_event_for_all_namespaces(field_selector="type=Normal").items) == 1
    assert core.read_namespaced_pod_log(pod, "shop", tail_lines=2) == "two\nthree\n"
    assert core.read_namespaced_pod_log(pod, "shop", container="web") == "one\ntwo\nthree\n"
    with pytest.raises(ApiException) as bad:
        core.read_namespaced_pod_log(pod, "shop", container="nope")
    assert bad.value.status == 400
    assert core.list_namespaced_pod("shop", label_selector="app in (web, api),!canary").items
    assert not core.list_namespaced_pod("shop", label_selector="app!=web").items


def test_wrong_token_is_refused() -> None:
    with KubernetesServer(token=TOKEN) as k8s:
        config = k8s.configuration()
        config.api_key = {"BearerToken": "wrong"}
        with client.ApiClient(config) as api, pytest.raises(ApiException) as refused:
            client.AppsV1Api(api).list_namespaced_deployment("default")
        assert refused.value.status == 401
        assert k8s.calls == []


def test_kubeconfig_and_scripted_failures(k8s: KubernetesServer, tmp_path: Path) -> None:
    api = config.new_client_from_config(config_file=str(k8s.write_kubeconfig(tmp_path / "kubeconfig")))
    core = client.CoreV1Api(api)
    k8s.fail_next(1, 503)
    with pytest.raises(ApiException) as unavailable:
        core.list_namespaced_pod("shop")
    assert unavailable.value.status == 503
    assert json.loads(unavailable.value.body)["kind"] == "Status"
    assert len(core.list_namespaced_pod("shop").items) == 2


def test_a_crash_looping_pod_as_an_investigator_sees_it(k8s: KubernetesServer, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    pod = core.list_namespaced_pod("shop").items[0].metadata.name
    with pytest.raises(ApiException) as no_previous:
        core.read_namespaced_pod_log(pod, "shop", previous=True)
    assert no_previous.value.status == 400
    k8s.crash_loop("shop", pod, restarts=7, exit_code=137)
    k8s.set_logs("shop", pod, "panic: pool exhausted\n", previous=True)

    [state] = core.read_namespaced_pod(pod, "shop").status.container_statuses
    assert (state.ready, state.restart_count) == (False, 7)
    assert state.state.waiting.reason == "CrashLoopBackOff"
    assert state.last_state.terminated.exit_code == 137
    assert core.read_namespaced_pod_log(pod, "shop", previous=True) == "panic: pool exhausted\n"
    assert core.read_namespaced_pod_log(pod, "shop") == ""


def test_a_write_with_a_stale_resource_version_is_a_conflict(
    k8s: KubernetesServer, api: client.ApiClient
) -> None:
    apps = client.AppsV1Api(api)
    seen = apps.read_namespaced_deployment("web", "shop").metadata.resource_version
    k8s.set_image("shop", "web", "shop:1.1")
    stale = [{"op": "replace", "path": "/metadata/resourceVersion", "value": seen}]
    with pytest.raises(ApiException) as conflict:
        apps.patch_namespaced_deployment(
            "web", "shop", [*stale, {"op": "replace", "path": "/spec/replicas", "value": 5}]
        )
    assert conflict.value.status == 409
    assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 2
    current = apps.read_namespaced_deployment("web", "shop").metadata.resource_version
    fresh = [{"op": "replace", "path": "/metadata/resourceVersion", "value": current}]
    apps.patch_namespaced_deployment(
        "web", "shop", [*fresh, {"op": "replace", "path": "/spec/replicas", "value": 5}]
    )
    assert apps.read_namespaced_deployment("web", "shop").spec.replicas == 5
