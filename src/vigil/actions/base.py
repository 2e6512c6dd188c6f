"""What every action is: the runbook step it runs, what a dry run says, what an execution returns.

A runbook is a list of `ActionStep`s written by people; a model only picks among them. Every action
reads the system's current state in `plan` (changing nothing) and, in `execute`, acts once per
idempotency key: the workflow runs steps at least once, so a repeat with the same key must find the
earlier attempt's work and return its result instead of acting again (see each action's module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vigil.actions.params import PARAMS
from vigil.errors import UserError

if TYPE_CHECKING:
    from vigil.actions.context import ActionContext

__all__ = [
    "Action",
    "ActionError",
    "ActionKind",
    "ActionName",
    "ActionRefused",
    "ActionResult",
    "ActionStep",
    "DryRun",
    "inverse",
]

ActionName = Literal[
    "kubernetes.rollout_restart",
    "kubernetes.scale",
    "kubernetes.rollout_undo",
    "kubernetes.delete_pod",
    "docker.restart",
    "http.request",
    "notify",
]
ActionKind = Literal["kubernetes", "docker", "http", "notify"]
Status = Literal["done", "skipped", "failed", "dry_run"]

P = TypeVar("P", bound=BaseModel)


class ActionRefused(UserError):
    """The project's action policy does not allow this: permanent, the message names the setting."""

    code = "action_refused"
    status = 403


class ActionError(Exception):
    """Reading or changing the target system failed; `retryable` says whether another attempt may work."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class ActionStep(BaseModel):
    """One step of a runbook: which action, with what (validated by the action's own params model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: ActionName
    params: dict[str, Any] = Field(default_factory=dict)
    required: bool = True
    """A required step that fails fails the runbook (roll back, escalate); an optional one is noted."""

    @field_validator("params")
    @classmethod
    def _valid_for_the_action(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        action = info.data.get("action")
        if action is None:
            return params
        return PARAMS[action].model_validate(params).model_dump(mode="json")

    @property
    def kind(self) -> ActionKind:
        kind = self.action.split(".", 1)[0]
        assert kind in ("kubernetes", "docker", "http", "notify")
        return kind  # type: ignore[return-value]

    def typed(self, model: type[P]) -> P:
        return model.model_validate(self.params)


class DryRun(BaseModel):
    """What `execute` would do, to whom, and the state it read: changes nothing."""

    action: ActionName
    target: str
    """`namespace/deployment`, `namespace/pod`, the container name, the URL, or `notify`."""
    description: str
    """One sentence, e.g. "restart deployment shop/checkout (3 replicas, revision 7)"."""
    state: dict[str, Any] = Field(default_factory=dict)
    refused: str | None = None
    """Why `execute` would refuse (the policy), None when it would act."""


class ActionResult(BaseModel):
    action: ActionName
    status: Status
    """done: the change is in place (by this call or an earlier one with the same key, see `repeated`);
    skipped: nothing needed doing; failed: see `retryable`; dry_run: the policy said to only describe."""
    target: str
    description: str
    idempotency_key: str
    before: dict[str, Any] = Field(default_factory=dict)
    """The state the action changed, as it was: what `inverse` restores."""
    details: dict[str, Any] = Field(default_factory=dict)
    retryable: bool = False
    repeated: bool = False
    """An earlier attempt with this key had already acted: nothing was done twice."""

    @classmethod
    def from_dry_run(cls, plan: DryRun, key: str) -> ActionResult:
        return cls(
            action=plan.action,
            status="dry_run",
            target=plan.target,
            description=f"dry run: would {plan.description}",
            idempotency_key=key,
            details={"state": plan.state},
        )

    @classmethod
    def from_error(cls, step: ActionStep, target: str, key: str, error: ActionError) -> ActionResult:
        return cls(
            action=step.action,
            status="failed",
            target=target,
            description=error.message,
            idempotency_key=key,
            retryable=error.retryable,
            details={"status": error.status} if error.status is not None else {},
        )


class Action(Protocol):
    name: ActionName

    async def plan(self, step: ActionStep, ctx: ActionContext) -> DryRun:
        """Read the current state and say what `execute` would do; never changes anything.

        Raises `ActionError` when the state cannot be read."""
        ...

    async def execute(self, step: ActionStep, ctx: ActionContext, idempotency_key: str) -> ActionResult:
        """Act once per key. Raises `ActionRefused` when the policy forbids; returns a failed result when
        the system does."""
        ...


def inverse(step: ActionStep, result: ActionResult) -> ActionStep | None:
    """The step that puts back what `result` changed, or None when nothing was changed or there is no
    way back (a deleted pod, a restarted container, an HTTP call, a notification).

    scale -> scale to the replicas seen before; rollout_restart and rollout_undo -> rollout_undo to
    the revision seen before (its ReplicaSet's template comes back, as `kubectl rollout undo`)."""
    if result.status != "done" or step.kind != "kubernetes" or "deployment" not in step.params:
        return None
    where = {"namespace": step.params["namespace"], "deployment": step.params["deployment"]}
    if step.action == "kubernetes.scale" and isinstance(result.before.get("replicas"), int):
        params = where | {"replicas": result.before["replicas"]}
        return ActionStep(action="kubernetes.scale", params=params, required=True)
    if step.action in ("kubernetes.rollout_restart", "kubernetes.rollout_undo"):
        revision = result.before.get("revision")
        if isinstance(revision, int):
            params = where | {"to_revision": revision}
            return ActionStep(action="kubernetes.rollout_undo", params=params, required=True)
    return None
