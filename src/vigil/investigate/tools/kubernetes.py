"""`kubernetes`: read-only cluster state with the official client: pods (phase, readiness,
restarts, last termination), events, a container's logs, and a deployment's rollout history."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import urllib3
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from vigil.investigate.tools.base import Found, Sample, Tool, ToolArgs, ToolContext, ToolFailed
from vigil.settings import InvestigateSettings

REVISION = "deployment.kubernetes.io/revision"
Raw = dict[str, Any]


def client_from_settings(settings: InvestigateSettings) -> kube_client.ApiClient:
    if settings.kubernetes_url is not None:
        configuration = kube_client.Configuration(host=settings.kubernetes_url)
        if settings.kubernetes_token is not None:
            configuration.api_key = {"BearerToken": settings.kubernetes_token.get_secret_value()}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return kube_client.ApiClient(configuration)
    if settings.kubernetes_in_cluster:
        configuration = kube_client.Configuration()
        kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return kube_client.ApiClient(configuration)
    loaded: kube_client.ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(settings.kubernetes_kubeconfig)
    )
    return loaded


class KubernetesArgs(ToolArgs):
    what: Literal["pods", "events", "logs", "rollouts"]
    namespace: str | None = Field(default=None, max_length=253, description="Default: the first configured.")
    name: str | None = Field(
        default=None, max_length=253, description="The pod (logs) or deployment (rollouts)."
    )
    label_selector: str | None = Field(default=None, max_length=1_000)
    container: str | None = Field(default=None, max_length=253)
    previous: bool = Field(
        default=False, description="Logs of the container's previous run (before its crash)."
    )
    tail_lines: int = Field(default=500, ge=1, le=5_000)


class KubernetesTool(Tool):
    name = "kubernetes"
    description = "Read-only Kubernetes state: pods, events, container logs, deployment rollout history."
    args = KubernetesArgs

    def enabled(self, ctx: ToolContext) -> bool:
        return ctx.settings.kubernetes_configured or ctx.kubernetes_factory is not None

    async def gather(self, ctx: ToolContext, project_id: str, args: KubernetesArgs) -> Found:
        namespace = args.namespace or (ctx.settings.kubernetes_namespaces or ["default"])[0]
        if namespace not in ctx.settings.kubernetes_namespaces:
            raise ToolFailed(f"kubernetes: namespace {namespace!r} is not among the configured ones")
        if args.what in ("logs", "rollouts") and not args.name:
            raise ToolFailed(f"kubernetes: {args.what} needs a name")
        read = {"pods": _pods, "events": _events, "logs": _logs, "rollouts": _rollouts}[args.what]
        api = await asyncio.to_thread(ctx.kubernetes)
        timeout = ctx.settings.timeout_s
        try:
            return await asyncio.to_thread(read, api, namespace, args, timeout)
        except ApiException as exc:
            raise ToolFailed(f"kubernetes: {args.what}: HTTP {exc.status} {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ToolFailed(f"kubernetes: {args.what}: {type(exc).__name__}") from None


def _raw(api: kube_client.ApiClient, obj: Any) -> Raw:
    raw: Raw = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return raw


def _pods(api: kube_client.ApiClient, namespace: str, args: KubernetesArgs, timeout: float) -> Found:
    core = kube_client.CoreV1Api(api)
    listed = core.list_namespaced_pod(
        namespace, label_selector=args.label_selector or "", _request_timeout=timeout
    )
    found = Found()
    phases: dict[str, int] = {}
    restarts = 0
    for pod in _raw(api, listed).get("items") or []:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        phase = status.get("phase", "Unknown")
        containers = status.get("containerStatuses") or []
        pod_restarts = sum(int(c.get("restartCount") or 0) for c in containers)
        restarts += pod_restarts
        waiting = [
            c["state"]["waiting"].get("reason", "")
            for c in containers
            if (c.get("state") or {}).get("waiting")
        ]
        last = [
            (c.get("lastState") or {}).get("terminated", {}).get("reason", "")
            for c in containers
            if (c.get("lastState") or {}).get("terminated")
        ]
        ready = sum(1 for c in containers if c.get("ready"))
        state = waiting[0] if waiting else phase
        phases[state] = phases.get(state, 0) + 1
        text = f"{meta.get('name')} {state} ready={ready}/{len(containers)} restarts={pod_restarts}"
        if last:
            text += f" last_terminated={last[0]}"
        found.samples.append(Sample(text=text, fields={"pod": meta.get("name"), "restarts": pod_restarts}))
    found.samples.sort(key=lambda s: -int(s.fields["restarts"]))  # the troubled ones first
    found.counts = {"pods": len(found.samples), "by_state": phases, "restarts": restarts}
    return found


def _events(api: kube_client.ApiClient, namespace: str, args: KubernetesArgs, timeout: float) -> Found:
    core = kube_client.CoreV1Api(api)
    selector = f"involvedObject.name={args.name}" if args.name else ""
    listed = core.list_namespaced_event(namespace, field_selector=selector, _request_timeout=timeout)
    events = _raw(api, listed).get("items") or []

    def when(event: Raw) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")

    events.sort(key=when, reverse=True)
    found = Found()
    by_reason: dict[str, int] = {}
    warnings = 0
    for event in events:
        reason = event.get("reason", "")
        by_reason[reason] = by_reason.get(reason, 0) + 1
        warnings += event.get("type") == "Warning"
        obj = event.get("involvedObject") or {}
        found.samples.append(
            Sample(
                text=f"{when(event)} {event.get('type', '')} {reason} {obj.get('kind', '')}/{obj.get('name', '')}: "
                f"{event.get('message', '')} (x{event.get('count') or 1})",
                fields={"reason": reason},
            )
        )
    found.counts = {"events": len(events), "warnings": warnings, "by_reason": by_reason}
    return found


def _logs(api: kube_client.ApiClient, namespace: str, args: KubernetesArgs, timeout: float) -> Found:
    core = kube_client.CoreV1Api(api)
    assert args.name is not None
    text = core.read_namespaced_pod_log(
        args.name,
        namespace,
        container=args.container,
        previous=args.previous,
        tail_lines=args.tail_lines,
        _request_timeout=timeout,
    )
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    lines.reverse()  # newest first, like every other tool's samples
    found = Found(counts={"lines": len(lines), "previous": args.previous})
    found.samples = [Sample(text=line) for line in lines]
    return found


def _rollouts(api: kube_client.ApiClient, namespace: str, args: KubernetesArgs, timeout: float) -> Found:
    apps = kube_client.AppsV1Api(api)
    assert args.name is not None
    deployment = _raw(api, apps.read_namespaced_deployment(args.name, namespace, _request_timeout=timeout))
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    listed = _raw(
        api, apps.list_namespaced_replica_set(namespace, label_selector=selector, _request_timeout=timeout)
    )
    uid = (deployment.get("metadata") or {}).get("uid")
    history: list[tuple[int, Sample]] = []
    for rs in listed.get("items") or []:
        meta = rs.get("metadata") or {}
        if uid and not any(o.get("uid") == uid for o in meta.get("ownerReferences") or []):
            continue
        revision = int((meta.get("annotations") or {}).get(REVISION, "0") or 0)
        containers = (((rs.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []
        images = ",".join(c.get("image", "") for c in containers)
        replicas = (rs.get("status") or {}).get("replicas") or 0
        text = f"revision {revision} {meta.get('name')} images={images} replicas={replicas} created={meta.get('creationTimestamp')}"
        history.append((revision, Sample(text=text, fields={"revision": revision, "images": images})))
    history.sort(key=lambda item: -item[0])
    status = deployment.get("status") or {}
    found = Found(
        counts={
            "revisions": len(history),
            "current_revision": history[0][0] if history else None,
            "replicas": status.get("replicas"),
            "ready_replicas": status.get("readyReplicas"),
            "updated_replicas": status.get("updatedReplicas"),
        }
    )
    found.samples = [sample for _, sample in history]
    return found
