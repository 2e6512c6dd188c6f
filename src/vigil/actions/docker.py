"""`docker.restart`: restart one container, as `docker restart`.

Idempotency: a container has nowhere to keep a note (labels are fixed when it is created), so the
action writes one to the context's ledger first: the container's `State.StartedAt` as read before
restarting. Then it restarts. A repeat with the same key that finds the note compares: a container
started since the note was restarted (by the first attempt, or on its own, which leaves it as freshly
started as the restart would) and is not restarted again; one with the same `StartedAt` was not, and
is restarted now. There is no inverse: a restart cannot be taken back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import docker
import docker.errors

from vigil.actions.base import ActionError, ActionName, ActionResult, ActionStep, DryRun
from vigil.actions.context import ActionContext
from vigil.actions.params import DockerRestartParams

__all__ = ["DockerRestart"]

T = TypeVar("T")
Raw = dict[str, Any]


class DockerRestart:
    name: ActionName = "docker.restart"

    async def plan(self, step: ActionStep, ctx: ActionContext) -> DryRun:
        params = step.typed(DockerRestartParams)
        target = params.container.lstrip("/")
        refusal = ctx.policy.docker.container_refusal(target)
        if refusal is not None:
            return DryRun(
                action=self.name, target=target, description=f"restart container {target}", refused=refusal
            )
        state = await _inspect(ctx, target)
        description = (
            f"restart container {target} ({state['status']}, started {state['started_at']}, "
            f"image {state['image']}), giving it {params.stop_timeout_s}s to stop"
        )
        return DryRun(action=self.name, target=target, description=description, state=state)

    async def execute(self, step: ActionStep, ctx: ActionContext, idempotency_key: str) -> ActionResult:
        params = step.typed(DockerRestartParams)
        target = params.container.lstrip("/")
        ctx.policy.require(ctx.policy.docker.container_refusal(target))
        result = {"action": self.name, "target": target, "idempotency_key": idempotency_key}
        try:
            if ctx.policy.dry_run("docker"):
                return ActionResult.from_dry_run(await self.plan(step, ctx), idempotency_key)
            state = await _inspect(ctx, target)
            note = await ctx.ledger.get(idempotency_key)
            before: Raw = note["before"] if note else state
            if note is not None and before.get("started_at") != state["started_at"]:
                description = f"restart container {target}: already done by an earlier attempt with this key"
                return ActionResult(
                    **result,
                    status="done",
                    description=description,
                    before=before,
                    details={"state": state},
                    repeated=True,
                )
            if note is None:
                await ctx.ledger.put(
                    idempotency_key, {"action": self.name, "target": target, "before": state}
                )
            await _engine_call(
                ctx,
                lambda engine: engine.api.restart(target, timeout=params.stop_timeout_s),
                f"restarting container {target}",
                extra_s=params.stop_timeout_s,
            )
            after = await _inspect(ctx, target)
        except ActionError as exc:
            return ActionResult.from_error(step, target, idempotency_key, exc)
        description = f"restarted container {target} (started {after['started_at']})"
        return ActionResult(
            **result, status="done", description=description, before=before, details={"state": after}
        )


async def _inspect(ctx: ActionContext, name: str) -> Raw:
    attrs: Raw = await _engine_call(
        ctx, lambda engine: engine.api.inspect_container(name), f"inspecting container {name}"
    )
    state = attrs.get("State") or {}
    return {
        "id": attrs.get("Id", "")[:12],
        "status": state.get("Status", "unknown"),
        "started_at": state.get("StartedAt"),
        "restart_count": attrs.get("RestartCount", 0),
        "image": (attrs.get("Config") or {}).get("Image"),
    }


async def _engine_call(
    ctx: ActionContext, call: Callable[[docker.DockerClient], T], what: str, *, extra_s: float = 0.0
) -> T:
    try:
        engine = await ctx.docker()
        return await ctx.blocking(lambda: call(engine), f"docker: {what}", extra_s=extra_s)
    except docker.errors.APIError as exc:
        status = exc.status_code
        retryable = status is None or status >= 500 or status in (408, 409, 429)
        detail = exc.explanation or (exc.response.reason if exc.response is not None else "")
        raise ActionError(
            f"docker: {what}: HTTP {status} {detail}", retryable=retryable, status=status
        ) from None
    except (docker.errors.DockerException, OSError) as exc:  # requests errors are OSErrors
        raise ActionError(f"docker: {what}: {type(exc).__name__}: {exc}", retryable=True) from None
