"""Deployment actions, as kubectl does them: rollout restart, scale, rollout undo.

Idempotency: each change is one JSON patch that also writes the key's note on the deployment (see
`kubernetes_api`). A repeat with the same key finds the note and returns the first attempt's result,
before-state included, without patching again.

- rollout_restart sets `kubectl.kubernetes.io/restartedAt` on the pod template to now (as kubectl,
  to the microsecond so two restarts in one second are two) and `vigil.dev/action-key` to the key
  (which incident's step restarted these pods); the note holds the revision seen before, for the
  inverse (rollout_undo to it).
- scale patches `spec.replicas` (with the note, which the scale subresource could not carry); when
  the deployment already has that many replicas it is skipped; the note holds the replicas before.
- rollout_undo copies the pod template of the target revision's ReplicaSet (`to_revision`, or the
  newest before the current) onto the deployment, as `kubectl rollout undo`; the note holds the
  revision before. Already at the target revision: skipped.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from vigil.actions.base import ActionError, ActionName, ActionResult, ActionStep, DryRun
from vigil.actions.context import ActionContext
from vigil.actions.kubernetes_api import (
    RESTARTED_AT,
    deployment_state,
    find_note,
    noted_patch,
    read_deployment,
    replica_sets,
    revision_of,
)
from vigil.actions.params import RolloutUndoParams, ScaleParams

__all__ = ["RolloutRestart", "RolloutUndo", "Scale"]

Raw = dict[str, Any]
ACTION_KEY = "vigil.dev/action-key"
Change = tuple[str, Raw, list[Raw]]
"""The sentence for what will be done, the before-state to note, the JSON patch ops (empty: nothing to do)."""


class _DeploymentAction:
    name: ActionName
    verb: str

    async def change(self, step: ActionStep, ctx: ActionContext, deployment: Raw, key: str) -> Change:
        raise NotImplementedError

    async def plan(self, step: ActionStep, ctx: ActionContext) -> DryRun:
        namespace, name = step.params["namespace"], step.params["deployment"]
        target = f"{namespace}/{name}"
        refusal = ctx.policy.kubernetes.deployment_refusal(namespace, name)
        if refusal is not None:
            return DryRun(
                action=self.name,
                target=target,
                description=f"{self.verb} deployment {target}",
                refused=refusal,
            )
        deployment = await read_deployment(ctx, namespace, name)
        sentence, _, _ = await self.change(step, ctx, deployment, "")
        return DryRun(
            action=self.name, target=target, description=sentence, state=deployment_state(deployment)
        )

    async def execute(self, step: ActionStep, ctx: ActionContext, idempotency_key: str) -> ActionResult:
        namespace, name = step.params["namespace"], step.params["deployment"]
        target = f"{namespace}/{name}"
        ctx.policy.require(ctx.policy.kubernetes.deployment_refusal(namespace, name))
        try:
            if ctx.policy.dry_run("kubernetes"):
                return ActionResult.from_dry_run(await self.plan(step, ctx), idempotency_key)
            return await self._execute(step, ctx, idempotency_key, target)
        except ActionError as exc:
            return ActionResult.from_error(step, target, idempotency_key, exc)

    async def _execute(self, step: ActionStep, ctx: ActionContext, key: str, target: str) -> ActionResult:
        deployment = await read_deployment(ctx, step.params["namespace"], step.params["deployment"])
        result = {"action": self.name, "target": target, "idempotency_key": key}
        if (note := find_note(deployment, key)) is not None:
            return ActionResult(
                **result,
                status="done",
                description=f"{self.verb} deployment {target}: already done by an earlier attempt with this key",
                before=note.get("before") or {},
                details={"state": deployment_state(deployment)},
                repeated=True,
            )
        sentence, before, ops = await self.change(step, ctx, deployment, key)
        if not ops:
            return ActionResult(**result, status="skipped", description=sentence, before=before)
        patched = await noted_patch(ctx, deployment, key, self.name, before, ops)
        return ActionResult(
            **result,
            status="done",
            description=sentence,
            before=before,
            details={"state": deployment_state(patched)},
        )


def _summary(deployment: Raw) -> str:
    state = deployment_state(deployment)
    return f"{state['replicas']} replicas, revision {state['revision']}"


class RolloutRestart(_DeploymentAction):
    name: ActionName = "kubernetes.rollout_restart"
    verb = "restart"

    async def change(self, step: ActionStep, ctx: ActionContext, deployment: Raw, key: str) -> Change:
        target = f"{step.params['namespace']}/{step.params['deployment']}"
        template_meta = deployment["spec"]["template"].get("metadata") or {}
        annotations = dict(template_meta.get("annotations") or {})
        before = {"revision": revision_of(deployment) or None, "restarted_at": annotations.get(RESTARTED_AT)}
        annotations[RESTARTED_AT] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        annotations[ACTION_KEY] = key
        path = "/spec/template/metadata/annotations" if template_meta else "/spec/template/metadata"
        value: Raw = annotations if template_meta else {"annotations": annotations}
        op = {"op": "add", "path": path, "value": value}
        return f"restart deployment {target} ({_summary(deployment)})", before, [op]


class Scale(_DeploymentAction):
    name: ActionName = "kubernetes.scale"
    verb = "scale"

    async def change(self, step: ActionStep, ctx: ActionContext, deployment: Raw, key: str) -> Change:
        params = step.typed(ScaleParams)
        target = f"{params.namespace}/{params.deployment}"
        current = deployment["spec"].get("replicas", 1)
        before = {"replicas": current, "revision": revision_of(deployment) or None}
        if current == params.replicas:
            return f"scale deployment {target}: already at {current} replicas", before, []
        sentence = f"scale deployment {target} from {current} to {params.replicas} replicas (revision {before['revision']})"
        return sentence, before, [{"op": "replace", "path": "/spec/replicas", "value": params.replicas}]


class RolloutUndo(_DeploymentAction):
    name: ActionName = "kubernetes.rollout_undo"
    verb = "roll back"

    async def change(self, step: ActionStep, ctx: ActionContext, deployment: Raw, key: str) -> Change:
        params = step.typed(RolloutUndoParams)
        target = f"{params.namespace}/{params.deployment}"
        current = revision_of(deployment)
        before = {"revision": current or None}
        history = await replica_sets(ctx, deployment)
        revisions = [revision_of(rs) for rs in history]
        if params.to_revision is None:
            older = [rs for rs in history if revision_of(rs) < current]
            if not older:
                raise ActionError(
                    f"roll back deployment {target}: no revision before {current} (revisions {revisions})",
                    retryable=False,
                )
            wanted = older[-1]
        else:
            found = [rs for rs in history if revision_of(rs) == params.to_revision]
            if not found:
                raise ActionError(
                    f"roll back deployment {target}: no revision {params.to_revision} (revisions {revisions})",
                    retryable=False,
                )
            wanted = found[0]
        to = revision_of(wanted)
        if to == current:
            return f"roll back deployment {target}: already at revision {current}", before, []
        template = copy.deepcopy(wanted["spec"]["template"])
        template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        sentence = (
            f"roll back deployment {target} from revision {current} ({_images(deployment['spec']['template'])}) "
            f"to revision {to} ({_images(template)})"
        )
        return sentence, before, [{"op": "replace", "path": "/spec/template", "value": template}]


def _images(template: Raw) -> str:
    return ", ".join(c.get("image", "?") for c in template.get("spec", {}).get("containers", []))
