"""The cluster behind the Kubernetes double: its objects, the seeding helpers, and the controllers.

The deployment and ReplicaSet controllers act at once: a changed pod template makes a new ReplicaSet
with the next `deployment.kubernetes.io/revision` (a template equal to an old ReplicaSet's gives that
one the next revision, as a rollback does), pods follow the active ReplicaSet's replicas, and a pod
deleted from a ReplicaSet is replaced. `KubernetesServer` mixes this in and serves it over the API.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

import orjson

from tests.doubles._rest import HttpError, utc_iso

__all__ = ["HASH_LABEL", "KINDS", "RESTARTED_AT", "REVISION", "KubeCluster", "status"]

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
HASH_LABEL = "pod-template-hash"
KINDS = {
    "deployments": ("apps/v1", "Deployment", "apps"),
    "replicasets": ("apps/v1", "ReplicaSet", "apps"),
    "pods": ("v1", "Pod", ""),
    "events": ("v1", "Event", ""),
}


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> HttpError:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return HttpError(code, body)


def _not_found(plural: str, name: str) -> HttpError:
    group = KINDS[plural][2]
    qualified = f"{plural}.{group}" if group else plural
    return status(404, "NotFound", f'{qualified} "{name}" not found', {"name": name, "kind": plural})


def _template_hash(template: dict[str, Any]) -> str:
    bare = copy.deepcopy(template)
    bare.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    digest = hashlib.sha256(orjson.dumps(bare, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "".join("bcdfghjklmnpqrstvwxz2456789"[int(c, 16)] for c in digest[:10])


class KubeCluster:
    """Mixed into a `LocalServer`: every public method takes the server's lock."""

    _cond: Any

    def _init_cluster(self) -> None:
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {p: {} for p in KINDS}
        """plural -> (namespace, name) -> the stored object (read under `with k8s.lock`)."""
        self.logs: dict[tuple[str, str, str, bool], str] = {}
        self._versions = itertools.count(1000)

    @property
    def lock(self) -> Any:
        return self._cond

    # --- seeding (not recorded as calls) -----------------------------------------------------

    def add_deployment(
        self,
        name: str,
        namespace: str = "default",
        *,
        image: str = "nginx:1.27",
        replicas: int = 1,
        labels: dict[str, str] | None = None,
        containers: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        selector = labels or {"app": name}
        template = {
            "metadata": {"labels": dict(selector)},
            "spec": {"containers": containers or [{"name": name, "image": image}]},
        }
        spec = {"replicas": replicas, "selector": {"matchLabels": dict(selector)}, "template": template}
        with self._cond:
            deployment = self._new("deployments", namespace, name, labels=dict(selector), spec=spec)
            self._reconcile(deployment)
            return copy.deepcopy(deployment)

    def set_image(self, namespace: str, name: str, image: str, container: str | None = None) -> None:
        """Roll the deployment to a new image, as someone else's rollout would (a new revision)."""
        with self._cond:
            deployment = self._get("deployments", namespace, name)
            for spec in deployment["spec"]["template"]["spec"]["containers"]:
                if container in (None, spec["name"]):
                    spec["image"] = image
            self._touch(deployment, spec_changed=True)
            self._reconcile(deployment)

    def add_pod(
        self,
        name: str,
        namespace: str = "default",
        *,
        labels: dict[str, str] | None = None,
        image: str = "busybox",
    ) -> dict[str, Any]:
        """A pod of no controller (deleting it does not bring it back)."""
        with self._cond:
            spec = {"containers": [{"name": name, "image": image}]}
            return copy.deepcopy(self._new_pod(namespace, name, labels or {}, spec, owner=None))

    def add_event(
        self,
        namespace: str,
        *,
        kind: str,
        name: str,
        reason: str,
        message: str,
        type: str = "Warning",
        count: int = 1,
        component: str = "kubelet",
    ) -> dict[str, Any]:
        now = utc_iso()
        with self._cond:
            event = self._new("events", namespace, f"{name}.{secrets.token_hex(8)}")
            event["involvedObject"] = {"kind": kind, "name": name, "namespace": namespace}
            event |= {"reason": reason, "message": message, "type": type, "count": count}
            event |= {"firstTimestamp": now, "lastTimestamp": now, "source": {"component": component}}
            return copy.deepcopy(event)

    def set_logs(
        self, namespace: str, pod: str, text: str, container: str | None = None, *, previous: bool = False
    ) -> None:
        """The container's log (`previous`: its last terminated instance's, as `?previous=true` reads)."""
        with self._cond:
            spec = self._get("pods", namespace, pod)["spec"]
            self.logs[(namespace, pod, container or spec["containers"][0]["name"], previous)] = text

    def crash_loop(
        self, namespace: str, pod: str, container: str | None = None, *, restarts: int = 5, exit_code: int = 1
    ) -> None:
        """Put a container in CrashLoopBackOff: waiting, not ready, restarted, its last run terminated."""
        now = utc_iso()
        with self._cond:
            statuses = self._get("pods", namespace, pod)["status"]["containerStatuses"]
            state = next(s for s in statuses if container in (None, s["name"]))
            message = f"back-off 5m0s restarting failed container={state['name']} pod={pod}"
            state |= {"ready": False, "started": False, "restartCount": restarts}
            state["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            terminated = {"exitCode": exit_code, "reason": "Error", "startedAt": now, "finishedAt": now}
            state["lastState"] = {"terminated": terminated}

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        with self._cond:
            return copy.deepcopy(self._get(plural, namespace, name))

    def list_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                copy.deepcopy(o) for (ns, _), o in self.objects[plural].items() if namespace in (None, ns)
            ]

    # --- the controllers ---------------------------------------------------------------------

    def _delete(self, obj: dict[str, Any]) -> Any:
        meta = obj["metadata"]
        plural = next(p for p, (_, kind, _) in KINDS.items() if kind == obj["kind"])
        del self.objects[plural][(meta["namespace"], meta["name"])]
        return obj

    def _delete_pod(self, pod: dict[str, Any]) -> Any:
        self._delete(pod)
        pod["metadata"]["deletionTimestamp"] = utc_iso()
        for owner in pod["metadata"].get("ownerReferences", []):
            for rs in self.objects["replicasets"].values():
                if rs["metadata"]["uid"] == owner["uid"]:
                    self._sync_pods(rs)
        return pod

    # --- the controllers ---------------------------------------------------------------------

    def _get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.objects[plural][(namespace, name)]
        except KeyError:
            raise _not_found(plural, name) from None

    def _new(self, plural: str, namespace: str, name: str, **fields: Any) -> dict[str, Any]:
        api_version, kind, _ = KINDS[plural]
        labels = fields.pop("labels", None) or {}
        meta = {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": utc_iso(),
        }
        meta |= {
            "labels": labels,
            "annotations": {},
            "generation": 1,
            "resourceVersion": str(next(self._versions)),
        }
        obj = {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}
        self.objects[plural][(namespace, name)] = obj
        return obj

    def _touch(self, obj: dict[str, Any], *, spec_changed: bool) -> None:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self._versions))
        if spec_changed:
            meta["generation"] = meta.get("generation", 1) + 1

    def _owned(self, plural: str, owner: dict[str, Any]) -> Iterable[dict[str, Any]]:
        uid = owner["metadata"]["uid"]
        return [
            o
            for o in self.objects[plural].values()
            if any(r["uid"] == uid for r in o["metadata"].get("ownerReferences", []))
        ]

    def _reconcile(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        template_hash = _template_hash(spec["template"])
        owned = list(self._owned("replicasets", deployment))
        newest = max((int(rs["metadata"]["annotations"].get(REVISION, "0")) for rs in owned), default=0)
        active = next((rs for rs in owned if _template_hash(rs["spec"]["template"]) == template_hash), None)
        if active is None:
            template = copy.deepcopy(spec["template"])
            template["metadata"].setdefault("labels", {})[HASH_LABEL] = template_hash
            labels = dict(template["metadata"]["labels"])
            selector = {"matchLabels": {**spec["selector"]["matchLabels"], HASH_LABEL: template_hash}}
            rs_spec = {"replicas": 0, "selector": selector, "template": template}
            active = self._new(
                "replicasets",
                meta["namespace"],
                f"{meta['name']}-{template_hash}",
                labels=labels,
                spec=rs_spec,
            )
            active["metadata"]["ownerReferences"] = [_owner_ref(deployment)]
            active["metadata"]["annotations"][REVISION] = str(newest + 1)
            owned.append(active)
        elif int(active["metadata"]["annotations"].get(REVISION, "0")) != newest:
            active["metadata"]["annotations"][REVISION] = str(newest + 1)
        meta["annotations"][REVISION] = active["metadata"]["annotations"][REVISION]
        for rs in owned:
            rs["spec"]["replicas"] = spec.get("replicas", 1) if rs is active else 0
            self._sync_pods(rs)
        replicas = spec.get("replicas", 1)
        deployment["status"] = {
            "observedGeneration": meta["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }

    def _sync_pods(self, rs: dict[str, Any]) -> None:
        pods = sorted(self._owned("pods", rs), key=lambda p: p["metadata"]["name"])
        want = rs["spec"]["replicas"]
        for pod in pods[want:]:
            self._delete(pod)
        template = rs["spec"]["template"]
        for _ in range(want - len(pods)):
            name = f"{rs['metadata']['name']}-{secrets.token_hex(3)[:5]}"
            self._new_pod(
                rs["metadata"]["namespace"], name, template["metadata"]["labels"], template["spec"], rs
            )
        rs["status"] = {
            "replicas": want,
            "readyReplicas": want,
            "availableReplicas": want,
            "observedGeneration": 1,
        }

    def _new_pod(
        self,
        namespace: str,
        name: str,
        labels: dict[str, str],
        spec: dict[str, Any],
        owner: dict[str, Any] | None,
    ) -> dict[str, Any]:
        pod = self._new("pods", namespace, name, labels=dict(labels), spec=copy.deepcopy(spec))
        if owner is not None:
            pod["metadata"]["ownerReferences"] = [_owner_ref(owner)]
        pod["spec"].setdefault("nodeName", "node-1")
        started = utc_iso()
        statuses = [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": f"docker.io/library/{c['image']}@sha256:{hashlib.sha256(c['image'].encode()).hexdigest()}",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": started}},
            }
            for c in pod["spec"]["containers"]
        ]
        pod["status"] = {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "startTime": started,
            "containerStatuses": statuses,
        }
        return pod


def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
