"""A Kubernetes API server holding Deployments, ReplicaSets, Pods, Events and pod logs in memory.

    with KubernetesServer(token="t") as k8s:                 # or: async with ...
        k8s.add_deployment("web", image="shop:1.0", replicas=2)   # its ReplicaSet (revision 1), pods
        k8s.set_image("default", "web", "shop:1.1")               # history: a rollout, revision 2
        k8s.add_event("default", kind="Pod", name=pod, reason="BackOff", message="...")
        k8s.set_logs("default", pod, "line 1\\nline 2\\n")
        api = kubernetes.client.ApiClient(k8s.configuration())    # the official client, unchanged
        ...
        assert k8s.restarts("default", "web") == 1                # patches setting restartedAt
        assert k8s.count_calls("delete", "pods", name=pod) == 1   # every call, parsed (`calls`)

It acts as the API server plus the deployment and ReplicaSet controllers, at once: a changed pod
template makes a new ReplicaSet with the next `deployment.kubernetes.io/revision` (or, for a rollback
to an old template, gives that ReplicaSet the next revision, as the real controller does), pods follow
the active ReplicaSet's replicas, and a deleted pod is replaced. Patches: JSON patch, merge patch and
strategic merge patch (lists of named items merged by name). Errors are `Status` objects: 404
NotFound, 401 Unauthorized (with a token), 422 Invalid, 400 BadRequest, 415 for other patch types.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from tests.doubles._rest import Call, HttpError, Response, RestServer, utc_iso
from tests.doubles.k8s_patch import apply_patch, matches_fields, matches_labels

__all__ = ["KubeCall", "KubernetesServer"]

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
HASH_LABEL = "pod-template-hash"
KINDS = {
    "deployments": ("apps/v1", "Deployment", "apps"),
    "replicasets": ("apps/v1", "ReplicaSet", "apps"),
    "pods": ("v1", "Pod", ""),
    "events": ("v1", "Event", ""),
}
PATH = re.compile(
    r"/(?P<prefix>apis/apps/v1|api/v1)(?:/namespaces/(?P<ns>[^/]+))?"
    r"/(?P<plural>deployments|replicasets|pods|events)(?:/(?P<name>[^/]+))?(?:/(?P<sub>scale|log))?"
)


@dataclass(frozen=True)
class KubeCall:
    """One API call: verb (get, list, patch, update, delete), resource, where, and its body."""

    verb: str
    resource: str
    namespace: str | None
    name: str | None
    subresource: str | None
    body: Any
    content_type: str | None


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


class KubernetesServer(RestServer):
    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        super().__init__(port=port)
        self.token = token
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {p: {} for p in KINDS}
        """plural -> (namespace, name) -> the stored object (read under `with k8s.lock`)."""
        self.logs: dict[tuple[str, str, str], str] = {}
        self.calls: list[KubeCall] = []
        self._restarts: dict[tuple[str, str], int] = {}
        self._versions = itertools.count(1000)
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            self.route(method, PATH.pattern, self._dispatch)

    @property
    def lock(self) -> Any:
        return self._cond

    def configuration(self) -> Any:
        """A `kubernetes.client.Configuration` aimed at this server (with the token, if any)."""
        from kubernetes import client

        config = client.Configuration(host=self.base_url)
        if self.token is not None:
            config.api_key = {"BearerToken": self.token}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        return config

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

    def set_logs(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        with self._cond:
            spec = self._get("pods", namespace, pod)["spec"]
            self.logs[(namespace, pod, container or spec["containers"][0]["name"])] = text

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        with self._cond:
            return copy.deepcopy(self._get(plural, namespace, name))

    def list_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                copy.deepcopy(o) for (ns, _), o in self.objects[plural].items() if namespace in (None, ns)
            ]

    # --- inspection --------------------------------------------------------------------------

    def count_calls(
        self,
        verb: str,
        resource: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        sub: str | None = None,
    ) -> int:
        with self._cond:
            return sum(
                1
                for c in self.calls
                if (c.verb, c.resource, c.subresource) == (verb, resource, sub)
                and namespace in (None, c.namespace)
                and name in (None, c.name)
            )

    def restarts(self, namespace: str, name: str) -> int:
        """Changes to the deployment's `kubectl.kubernetes.io/restartedAt` (each is a rollout restart)."""
        with self._cond:
            return self._restarts.get((namespace, name), 0)

    # --- the API -----------------------------------------------------------------------------

    def not_found(self, method: str, path: str) -> HttpError:
        return status(404, "NotFound", "the server could not find the requested resource")

    def check_auth(self, call: Call) -> None:
        if self.token is not None and call.headers.get("authorization") != f"Bearer {self.token}":
            raise status(401, "Unauthorized", "Unauthorized")

    def _dispatch(self, call: Call) -> Any:
        match = PATH.fullmatch(call.path)
        assert match is not None
        prefix, ns, plural, name, sub = match.group("prefix", "ns", "plural", "name", "sub")
        wrong_group = prefix != ("apis/apps/v1" if KINDS[plural][2] == "apps" else "api/v1")
        wrong_sub = (sub == "scale" and plural != "deployments") or (sub == "log" and plural != "pods")
        if wrong_group or wrong_sub:
            raise self.not_found(call.method, call.path)
        body = call.json() if call.body else None
        verb = {"PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(
            call.method, "get" if name else "list"
        )
        self.calls.append(KubeCall(verb, plural, ns, name, sub, body, call.headers.get("content-type")))
        if name is None:
            if call.method != "GET":
                raise status(405, "MethodNotAllowed", f"the server does not allow this method on {plural}")
            return self._list(call, plural, ns)
        if ns is None:
            raise self.not_found(call.method, call.path)
        obj = self._get(plural, ns, name)
        if sub == "log":
            return self._log(call, obj)
        if sub == "scale":
            return self._scale(call, obj, body)
        if call.method == "GET":
            return obj
        if call.method == "DELETE":
            return self._delete_pod(obj) if plural == "pods" else self._delete(obj)
        if plural != "deployments":
            raise status(405, "MethodNotAllowed", f"the double does not change {plural}")
        changed = self._patch(call, obj, body) if call.method == "PATCH" else self._checked(obj, body)
        if _restarted_at(changed) != _restarted_at(obj):
            self._restarts[(ns, name)] = self._restarts.get((ns, name), 0) + 1
        spec_changed = changed["spec"] != obj["spec"]
        obj.clear()
        obj.update(changed)
        self._touch(obj, spec_changed=spec_changed)
        self._reconcile(obj)
        return obj

    def _list(self, call: Call, plural: str, ns: str | None) -> Any:
        api_version, kind, _ = KINDS[plural]
        labels, fields = call.arg("labelSelector", ""), call.arg("fieldSelector", "")
        try:
            items = [
                {k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                for (o_ns, _), o in sorted(self.objects[plural].items())
                if ns in (None, o_ns)
                and matches_labels(o["metadata"].get("labels", {}), labels or "")
                and matches_fields(o, fields or "")
            ]
        except ValueError as exc:
            raise status(400, "BadRequest", str(exc)) from None
        meta = {"resourceVersion": str(next(self._versions))}
        return {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": items}

    def _patch(self, call: Call, obj: dict[str, Any], body: Any) -> dict[str, Any]:
        kind = (call.headers.get("content-type") or "").split(";")[0].strip()
        try:
            patched = apply_patch(obj, body, kind)
        except LookupError as exc:
            raise status(415, "UnsupportedMediaType", str(exc)) from None
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise status(422, "Invalid", f"the patch could not be applied: {exc}") from None
        return self._checked(obj, patched)

    def _checked(self, obj: dict[str, Any], new: Any) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if not isinstance(new, dict) or not isinstance(new.get("spec"), dict):
            raise status(400, "BadRequest", "the object has no spec")
        new_meta = new.setdefault("metadata", {})
        if new_meta.get("name", name) != name:
            raise status(400, "BadRequest", "the name of the object does not match the name on the URL")
        for immutable in ("name", "namespace", "uid", "creationTimestamp"):
            new_meta[immutable] = obj["metadata"][immutable]
        spec = new["spec"]
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise status(
                422,
                "Invalid",
                f'Deployment.apps "{name}" is invalid: spec.replicas: Invalid value: {replicas}',
            )
        wanted = spec.get("selector", {}).get("matchLabels", {})
        labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
        if any(labels.get(k) != v for k, v in wanted.items()) or not spec.get("template", {}).get(
            "spec", {}
        ).get("containers"):
            raise status(
                422,
                "Invalid",
                f'Deployment.apps "{name}" is invalid: spec.template: selector does not match template labels, or no containers',
            )
        return new

    def _scale(self, call: Call, deployment: dict[str, Any], body: Any) -> Any:
        if call.method == "DELETE":
            raise status(405, "MethodNotAllowed", "the server does not allow this method on scale")
        if call.method != "GET":
            scale = self._scale_view(deployment)
            new = apply_patch(scale, body, "application/merge-patch+json") if call.method == "PATCH" else body
            replicas = (new or {}).get("spec", {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise status(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{deployment["metadata"]["name"]}" is invalid: spec.replicas',
                )
            deployment["spec"]["replicas"] = replicas
            self._touch(deployment, spec_changed=True)
            self._reconcile(deployment)
        return self._scale_view(deployment)

    def _scale_view(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = {
            k: deployment["metadata"][k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        }
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
        status_ = {"replicas": deployment["status"]["replicas"], "selector": selector}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": meta,
            "spec": {"replicas": deployment["spec"]["replicas"]},
            "status": status_,
        }

    def _log(self, call: Call, pod: dict[str, Any]) -> Response:
        pod_name = pod["metadata"]["name"]
        names = [c["name"] for c in pod["spec"]["containers"]]
        container = call.arg("container")
        if container is None:
            if len(names) > 1:
                message = f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]"
                raise status(400, "BadRequest", message)
            container = names[0]
        if container not in names:
            raise status(400, "BadRequest", f"container {container} is not valid for pod {pod_name}")
        text = self.logs.get((pod["metadata"]["namespace"], pod_name, container), "")
        tail = call.arg("tailLines")
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[len(lines) - int(tail) :]) if int(tail) else ""
        if (limit := call.arg("limitBytes")) is not None:
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return Response(body=text.encode(), headers={"content-type": "text/plain"})

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


def _restarted_at(deployment: dict[str, Any]) -> str | None:
    template_meta = deployment.get("spec", {}).get("template", {}).get("metadata") or {}
    return (template_meta.get("annotations") or {}).get(RESTARTED_AT)


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
