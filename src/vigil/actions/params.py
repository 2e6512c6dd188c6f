"""What each action takes: one pydantic model per action name, unknown fields refused.

Runbooks hold these as plain mappings (`ActionStep.params`); `PARAMS` validates them when the step
is built, so a runbook with a typo fails when it is loaded, never when an incident needs it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "PARAMS",
    "DeletePodParams",
    "DeploymentParams",
    "DockerRestartParams",
    "HttpRequestParams",
    "NotifyParams",
    "RolloutUndoParams",
    "ScaleParams",
]

KubeName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]
"""A namespace, deployment or pod name as the API server accepts them (DNS subdomain)."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentParams(_Params):
    """`kubernetes.rollout_restart`: restart every pod of a deployment, as `kubectl rollout restart`."""

    namespace: KubeName
    deployment: KubeName


class ScaleParams(DeploymentParams):
    """`kubernetes.scale`: set the deployment's replicas, as `kubectl scale`."""

    replicas: int = Field(ge=0, le=1000)


class RolloutUndoParams(DeploymentParams):
    """`kubernetes.rollout_undo`: back to `to_revision`, or the one before the current (kubectl's default)."""

    to_revision: int | None = Field(default=None, ge=1)


class DeletePodParams(_Params):
    """`kubernetes.delete_pod`: delete one pod of a deployment; its ReplicaSet starts a new one."""

    namespace: KubeName
    pod: KubeName


class DockerRestartParams(_Params):
    """`docker.restart`: restart a container, as `docker restart --time stop_timeout_s`."""

    container: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^/?[\w][\w.-]*$")]
    stop_timeout_s: int = Field(default=10, ge=0, le=600)


class HttpRequestParams(_Params):
    """`http.request`: one HTTP call, sent with an `Idempotency-Key` header."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent as given; only their names appear in descriptions and results."""
    json_body: Any = None
    expect_status: list[int] = Field(default_factory=list)
    """The statuses that count as success; empty: any 2xx."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class NotifyParams(_Params):
    """`notify`: a message for the workflow to send to the incident's people; the action sends nothing."""

    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    severity: Literal["info", "warning", "critical"] = "info"


PARAMS: dict[str, type[_Params]] = {
    "kubernetes.rollout_restart": DeploymentParams,
    "kubernetes.scale": ScaleParams,
    "kubernetes.rollout_undo": RolloutUndoParams,
    "kubernetes.delete_pod": DeletePodParams,
    "docker.restart": DockerRestartParams,
    "http.request": HttpRequestParams,
    "notify": NotifyParams,
}
