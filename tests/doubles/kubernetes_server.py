"""A Kubernetes API server holding Deployments, ReplicaSets, Pods, Events and pod logs in memory.

    with KubernetesServer(token="t") as k8s:                 # or: async with ...
        k8s.add_deployment("web", image="shop:1.0", replicas=2)   # its ReplicaSet (revision 1), pods
        k8s.set_image("default", "web", "shop:1.1")               # history: a rollout, revision 2
        k8s.add_event("default", kind="Pod", name=pod, reason="BackOff", message="...")
        k8s.set_logs("default", pod, "line 1\\nline 2\\n")        # previous=True: the last crash's
        k8s.crash_loop("default", pod, restarts=5)                # CrashLoopBackOff in its status
        api = kubernetes.client.ApiClient(k8s.configuration())    # the official client, unchanged
        kubernetes.config.new_client_from_config(str(k8s.write_kubeconfig(tmp_path / "kubeconfig")))
        ...
        assert k8s.restarts("default", "web") == 1                # patches setting restartedAt
        assert k8s.count_calls("delete", "pods", name=pod) == 1   # every call, parsed (`calls`)

It acts as the API server plus the deployment and ReplicaSet controllers, at once: a changed pod
template makes a new ReplicaSet with the next `deployment.kubernetes.io/revision` (or, for a rollback
to an old template, gives that ReplicaSet the next revision, as the real controller does), pods follow
the active ReplicaSet's replicas, and a deleted pod is replaced. Patches: JSON patch, merge patch and
strategic merge patch (lists of named items merged by name). A write whose `metadata.resourceVersion`
is not the stored one is refused with 409 Conflict (optimistic concurrency). Errors are `Status`
objects: 404 NotFound, 401 Unauthorized (with a token), 409 Conflict, 422 Invalid, 400 BadRequest,
415 for other patch types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.doubles._rest import Call, HttpError, Response, RestServer
from tests.doubles.k8s_cluster import KINDS, RESTARTED_AT, REVISION, KubeCluster, status
from tests.doubles.k8s_patch import apply_patch, matches_fields, matches_labels

__all__ = ["REVISION", "KubeCall", "KubernetesServer"]

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


class KubernetesServer(RestServer, KubeCluster):
    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        super().__init__(port=port)
        self.token = token
        self._init_cluster()
        self.calls: list[KubeCall] = []
        self._restarts: dict[tuple[str, str], int] = {}
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            self.route(method, PATH.pattern, self._dispatch)

    def configuration(self) -> Any:
        """A `kubernetes.client.Configuration` aimed at this server (with the token, if any)."""
        from kubernetes import client

        config = client.Configuration(host=self.base_url)
        if self.token is not None:
            config.api_key = {"BearerToken": self.token}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        return config

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path:
        """A kubeconfig file whose current context is this server (for code that loads one)."""
        user = {"token": self.token} if self.token is not None else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.base_url}}],
            "users": [{"name": "double", "user": user}],
            "contexts": [
                {"name": "double", "context": {"cluster": "double", "user": "double", "namespace": namespace}}
            ],
            "current-context": "double",
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config))
        return target

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

    def failure_body(self, code: int) -> bytes:
        return orjson.dumps(
            status(code, "InternalError" if code >= 500 else "BadRequest", f"scripted failure {code}").body
        )

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
        if (
            new_meta.get("resourceVersion", obj["metadata"]["resourceVersion"])
            != obj["metadata"]["resourceVersion"]
        ):
            message = f'Operation cannot be fulfilled on deployments.apps "{name}": the object has been modified; please apply your changes to the latest version and try again'
            raise status(409, "Conflict", message)
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
        previous = call.arg("previous") == "true"
        key = (pod["metadata"]["namespace"], pod_name, container, previous)
        if previous and key not in self.logs:
            message = f'previous terminated container "{container}" in pod "{pod_name}" not found'
            raise status(400, "BadRequest", message)
        text = self.logs.get(key, "")
        tail = call.arg("tailLines")
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[len(lines) - int(tail) :]) if int(tail) else ""
        if (limit := call.arg("limitBytes")) is not None:
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return Response(body=text.encode(), headers={"content-type": "text/plain"})


def _restarted_at(deployment: dict[str, Any]) -> str | None:
    template_meta = deployment.get("spec", {}).get("template", {}).get("metadata") or {}
    return (template_meta.get("annotations") or {}).get(RESTARTED_AT)
