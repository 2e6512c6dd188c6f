"""The Kubernetes calls the actions make, errors classified, and the notes they keep on deployments.

A note is one annotation per idempotency key, `vigil.dev/action-<sha256(key)[:16]>`, holding
`{"key", "action", "before", "at"}`. It goes on the deployment in the same JSON patch as the change,
which also carries the `resourceVersion` read: the change and its note land together or not at all,
and a concurrent writer makes the patch fail with 409 (retryable) instead of acting twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import urllib3
from kubernetes import client as kube_client
from kubernetes.client.exceptions import ApiException

from vigil.actions.base import ActionError
from vigil.actions.context import ActionContext

__all__ = [
    "NOTE_PREFIX",
    "RESTARTED_AT",
    "REVISION",
    "as_dict",
    "deployment_state",
    "find_note",
    "kube_call",
    "noted_patch",
    "read_deployment",
    "replica_sets",
]

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
NOTE_PREFIX = "vigil.dev/action-"
KEEP_NOTES = 10
"""Notes kept per deployment (the newest); a repeat comes right after its attempt, never ten later."""
RETRYABLE = frozenset({408, 409, 425, 429})

T = TypeVar("T")
Raw = dict[str, Any]


async def kube_call(ctx: ActionContext, call: Callable[[kube_client.ApiClient, float], T], what: str) -> T:
    """`call(api, timeout)` in a thread; API and transport failures become classified `ActionError`s."""
    api = await ctx.kubernetes()
    timeout = ctx.policy.call_timeout_s
    try:
        return await ctx.blocking(lambda: call(api, timeout), f"kubernetes: {what}")
    except ApiException as exc:
        status = exc.status if isinstance(exc.status, int) else None
        retryable = status is None or status >= 500 or status in RETRYABLE
        raise ActionError(
            f"kubernetes: {what}: HTTP {status} {_message(exc)}", retryable=retryable, status=status
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ActionError(f"kubernetes: {what}: {type(exc).__name__}", retryable=True) from None


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return str(exc.reason or "")
    return str(body.get("message") or exc.reason or "") if isinstance(body, dict) else str(exc.reason)


def as_dict(api: kube_client.ApiClient, obj: Any) -> Raw:
    raw: Raw = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return raw


async def read_deployment(ctx: ActionContext, namespace: str, name: str) -> Raw:
    return await kube_call(
        ctx,
        lambda api, t: as_dict(
            api, kube_client.AppsV1Api(api).read_namespaced_deployment(name, namespace, _request_timeout=t)
        ),
        f"reading deployment {namespace}/{name}",
    )


async def replica_sets(ctx: ActionContext, deployment: Raw) -> list[Raw]:
    """The deployment's ReplicaSets (owned by its uid), oldest revision first."""
    meta = deployment["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"].get("matchLabels", {}).items())
    listed = await kube_call(
        ctx,
        lambda api, t: as_dict(
            api,
            kube_client.AppsV1Api(api).list_namespaced_replica_set(
                meta["namespace"], label_selector=selector, _request_timeout=t
            ),
        ),
        f"listing the ReplicaSets of {meta['namespace']}/{meta['name']}",
    )
    owned = [
        rs
        for rs in listed.get("items", [])
        if any(o.get("uid") == meta["uid"] for o in rs["metadata"].get("ownerReferences", []))
    ]
    return sorted(owned, key=revision_of)


def revision_of(obj: Raw) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def deployment_state(deployment: Raw) -> Raw:
    spec, status = deployment["spec"], deployment.get("status") or {}
    return {
        "replicas": spec.get("replicas", 1),
        "ready_replicas": status.get("readyReplicas", 0),
        "revision": revision_of(deployment) or None,
        "images": [c.get("image") for c in spec["template"]["spec"].get("containers", [])],
    }


def note_name(key: str) -> str:
    return f"{NOTE_PREFIX}{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def find_note(deployment: Raw, key: str) -> Raw | None:
    """The note an earlier attempt with `key` left on the deployment, if any."""
    value = (deployment["metadata"].get("annotations") or {}).get(note_name(key))
    try:
        note = json.loads(value) if value else None
    except ValueError:
        return None
    return note if isinstance(note, dict) and note.get("key") == key else None


async def noted_patch(
    ctx: ActionContext, deployment: Raw, key: str, action: str, before: Raw, ops: list[Raw]
) -> Raw:
    """Apply the JSON patch `ops` together with the note for `key`, if the deployment is unchanged."""
    meta = deployment["metadata"]
    annotations = dict(meta.get("annotations") or {})
    notes = sorted(
        (k for k in annotations if k.startswith(NOTE_PREFIX)),
        key=lambda k: _noted_at(annotations[k]),
    )
    for stale in notes[: max(0, len(notes) - (KEEP_NOTES - 1))]:
        del annotations[stale]
    at = datetime.now(UTC).isoformat()
    note = {"key": key, "action": action, "before": before, "at": at}
    annotations[note_name(key)] = json.dumps(note, separators=(",", ":"))
    patch = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
        *ops,
    ]
    namespace, name = meta["namespace"], meta["name"]
    return await kube_call(
        ctx,
        lambda api, t: as_dict(
            api,
            kube_client.AppsV1Api(api).patch_namespaced_deployment(
                name, namespace, patch, _content_type="application/json-patch+json", _request_timeout=t
            ),
        ),
        f"patching deployment {namespace}/{name}",
    )


def _noted_at(value: str) -> str:
    try:
        return str(json.loads(value).get("at", ""))
    except (ValueError, AttributeError):
        return ""
