"""`kubernetes.delete_pod`: delete one pod of a deployment so its ReplicaSet starts a fresh one.

Only pods a deployment owns (pod -> ReplicaSet -> Deployment) may be deleted, and the policy is
checked against that deployment. Their names are generated, never reused, so the action is
idempotent by the pod's name: a pod already gone is "skipped (already gone)". The delete carries the
uid read just before as a precondition, so a pod recreated under the same name is never the one hit.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as kube_client

from vigil.actions.base import ActionError, ActionName, ActionResult, ActionStep, DryRun
from vigil.actions.context import ActionContext
from vigil.actions.kubernetes_api import as_dict, kube_call
from vigil.actions.params import DeletePodParams

__all__ = ["DeletePod"]

Raw = dict[str, Any]


class DeletePod:
    name: ActionName = "kubernetes.delete_pod"

    async def plan(self, step: ActionStep, ctx: ActionContext) -> DryRun:
        params = step.typed(DeletePodParams)
        target = f"{params.namespace}/{params.pod}"
        refusal = ctx.policy.kubernetes.namespace_refusal(params.namespace)
        if refusal is not None:
            return DryRun(
                action=self.name, target=target, description=f"delete pod {target}", refused=refusal
            )
        pod = await _read_pod(ctx, params.namespace, params.pod)
        if pod is None:
            description = f"do nothing: pod {target} is already gone"
            return DryRun(action=self.name, target=target, description=description, state={"exists": False})
        owner = await _owning_deployment(ctx, pod)
        state = _pod_state(pod, owner)
        description = (
            f"delete pod {target} of deployment {params.namespace}/{owner} "
            f"({state['phase']}, {state['restarts']} restarts); its ReplicaSet starts a new one"
            if owner
            else f"delete pod {target}"
        )
        refused = _refusal(ctx, params.namespace, params.pod, owner)
        return DryRun(action=self.name, target=target, description=description, state=state, refused=refused)

    async def execute(self, step: ActionStep, ctx: ActionContext, idempotency_key: str) -> ActionResult:
        params = step.typed(DeletePodParams)
        target = f"{params.namespace}/{params.pod}"
        ctx.policy.require(ctx.policy.kubernetes.namespace_refusal(params.namespace))
        result = {"action": self.name, "target": target, "idempotency_key": idempotency_key}
        try:
            if ctx.policy.dry_run("kubernetes"):
                plan = await self.plan(step, ctx)
                ctx.policy.require(plan.refused)
                return ActionResult.from_dry_run(plan, idempotency_key)
            pod = await _read_pod(ctx, params.namespace, params.pod)
            if pod is None:
                return ActionResult(**result, status="skipped", description=f"pod {target}: already gone")
            owner = await _owning_deployment(ctx, pod)
            ctx.policy.require(_refusal(ctx, params.namespace, params.pod, owner))
            before = _pod_state(pod, owner)
            outcome = await _delete(ctx, params.namespace, params.pod, pod["metadata"]["uid"])
        except ActionError as exc:
            return ActionResult.from_error(step, target, idempotency_key, exc)
        if outcome is not None:
            return ActionResult(
                **result, status="skipped", description=f"pod {target}: {outcome}", before=before
            )
        description = (
            f"deleted pod {target} of deployment {params.namespace}/{owner}; its ReplicaSet starts a new one"
        )
        return ActionResult(**result, status="done", description=description, before=before)


def _refusal(ctx: ActionContext, namespace: str, pod: str, owner: str | None) -> str | None:
    if owner is None:
        return (
            f"pod {namespace}/{pod} belongs to no deployment: only deployments' pods may be deleted "
            "(their ReplicaSet replaces them)"
        )
    return ctx.policy.kubernetes.deployment_refusal(namespace, owner)


def _pod_state(pod: Raw, owner: str | None) -> Raw:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return {
        "exists": True,
        "uid": pod["metadata"]["uid"],
        "deployment": owner,
        "phase": (pod.get("status") or {}).get("phase", "Unknown"),
        "restarts": sum(s.get("restartCount", 0) for s in statuses),
        "node": (pod.get("spec") or {}).get("nodeName"),
    }


async def _missing_as_none(ctx: ActionContext, read: Any, what: str) -> Raw | None:
    try:
        found: Raw = await kube_call(ctx, lambda api, t: as_dict(api, read(api, t)), what)
    except ActionError as exc:
        if exc.status == 404:
            return None
        raise
    return found


async def _read_pod(ctx: ActionContext, namespace: str, name: str) -> Raw | None:
    return await _missing_as_none(
        ctx,
        lambda api, t: kube_client.CoreV1Api(api).read_namespaced_pod(name, namespace, _request_timeout=t),
        f"reading pod {namespace}/{name}",
    )


async def _owning_deployment(ctx: ActionContext, pod: Raw) -> str | None:
    namespace = pod["metadata"]["namespace"]
    owners = pod["metadata"].get("ownerReferences") or []
    rs_name = next((o["name"] for o in owners if o.get("kind") == "ReplicaSet"), None)
    if rs_name is None:
        return None
    rs = await _missing_as_none(
        ctx,
        lambda api, t: kube_client.AppsV1Api(api).read_namespaced_replica_set(
            rs_name, namespace, _request_timeout=t
        ),
        f"reading ReplicaSet {namespace}/{rs_name}",
    )
    owners = (rs or {}).get("metadata", {}).get("ownerReferences") or []
    return next((str(o["name"]) for o in owners if o.get("kind") == "Deployment"), None)


async def _delete(ctx: ActionContext, namespace: str, name: str, uid: str) -> str | None:
    """None when deleted; why not, when the pod is gone or another took its name."""
    options = kube_client.V1DeleteOptions(preconditions=kube_client.V1Preconditions(uid=uid))
    try:
        await kube_call(
            ctx,
            lambda api, t: kube_client.CoreV1Api(api).delete_namespaced_pod(
                name, namespace, body=options, _request_timeout=t
            ),
            f"deleting pod {namespace}/{name}",
        )
    except ActionError as exc:
        if exc.status == 404:
            return "already gone"
        if exc.status == 409:
            return "already gone (a new pod has its name)"
        raise
    return None
