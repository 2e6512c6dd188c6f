"""A running Vigil with a project, its records, an incident with a signal and evidence, and the
local Prometheus, Loki, Elasticsearch and Kubernetes servers: what the tool tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import VigilHandle
from tests.doubles.elasticsearch_server import ElasticsearchServer
from tests.doubles.kubernetes_server import KubernetesServer
from tests.doubles.loki_server import LokiServer
from tests.doubles.prometheus_server import PrometheusServer
from tests.logs_factory import INFO, PROTOBUF, export_bytes
from vigil.agents.builtin.budget import BudgetLimits, MemoryUsageStore, TokenBudget
from vigil.detect.incidents import Incident
from vigil.detect.signals import Evidence, Severity, Signal, SignalKind
from vigil.investigate.citations import CitationStore
from vigil.investigate.tools import ToolContext
from vigil.settings import InvestigateSettings

SERVICE = "payment-service"
POOL_ERROR = "HikariPool-1 - Connection is not available, request timed out after {}ms"


@dataclass
class Setup:
    vigil: VigilHandle
    project_id: str
    key: str
    incident: dict[str, Any]
    ctx: ToolContext
    prom: PrometheusServer
    loki: LokiServer
    es: ElasticsearchServer
    k8s: KubernetesServer


def settings(prom: str | None, loki: str | None, es: str | None, k8s: str | None) -> InvestigateSettings:
    return InvestigateSettings(
        prometheus_url=prom,
        prometheus_queries=['sum(rate(http_errors_total{service="{service}"}[5m]))'],
        loki_url=loki,
        loki_selector='{app="{service}"}',
        elasticsearch_url=es,
        kubernetes_url=k8s,
    )


def context(
    vigil: VigilHandle, investigate: InvestigateSettings, budget: TokenBudget | None = None
) -> ToolContext:
    runtime = vigil.runtime
    assert runtime.store is not None and runtime.recent is not None
    return ToolContext(
        store=runtime.store,
        settings=investigate,
        citations=CitationStore(runtime.store),
        http=httpx.AsyncClient(),
        recent=runtime.recent,
        templates=runtime.recent.templates,
        evidence=runtime.evidence,
        budget=budget,
    )


async def send_records(vigil: VigilHandle, key: str) -> int:
    errors = [POOL_ERROR.format(30_000 + i) + " password=hunter2" for i in range(40)]
    infos = [f"charged order {i} in {i}ms" for i in range(60)]
    for service, bodies, severity in ((SERVICE, errors, 17), ("checkout", infos, INFO)):
        response = await vigil.receiver.post(
            "/v1/logs",
            content=export_bytes(service, bodies, severity=severity),
            headers={**PROTOBUF, "X-API-Key": key},
        )
        assert response.status_code == 200, response.text
    return 100


async def wait_for_records(vigil: VigilHandle, project_id: str, count: int) -> None:
    assert vigil.runtime.recent is not None
    deadline = asyncio.get_running_loop().time() + 20
    while vigil.runtime.recent.state(project_id).records < count:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)


async def add_incident(vigil: VigilHandle, project_id: str) -> dict[str, Any]:
    runtime = vigil.runtime
    assert runtime.store is not None and runtime.evidence is not None
    now = time.time()
    signal = Signal(
        kind=SignalKind.ERROR_RATE_SPIKE,
        severity=Severity.CRITICAL,
        project=project_id,
        service=SERVICE,
        endpoint="POST /pay",
        window_start=now - 120,
        window_end=now - 60,
        fingerprint="a1b2c3d4e5f60718",
        title="error rate spike on POST /pay",
        value=0.4,
        threshold=0.05,
        evidence=Evidence(trace_ids=["ab" * 16]),
    )
    incident = Incident(
        id="inc-pool",
        project=project_id,
        title=signal.title,
        severity=Severity.CRITICAL,
        services=[SERVICE],
        opened_at=now - 120,
        updated_at=now - 30,
        last_seen_at=now - 30,
        first_window_start=now - 120,
        last_window_end=now - 60,
        lead_fingerprint=signal.fingerprint,
        signals=[signal],
    )
    await runtime.store.save_incidents([incident])
    await runtime.evidence.put(signal)
    await runtime.store.add_incident_replay(
        project_id,
        incident.id,
        target="http://127.0.0.1:9",
        reproduced=True,
        attempted=3,
        failed=3,
        results=[],
    )
    return incident.model_dump(mode="json")


def seed_externals(
    prom: PrometheusServer, loki: LokiServer, es: ElasticsearchServer, k8s: KubernetesServer
) -> None:
    now = time.time()
    prom.set(f'sum(rate(http_errors_total{{service="{SERVICE}"}}[5m]))', lambda t: 4.2)
    prom.set("up", [({"job": "shop", "instance": f"a{i}:9100"}, 1) for i in range(30)])
    for i in range(30):
        loki.push({"app": SERVICE}, f"pool wait {i} token=ghp_{'a' * 36}", at=now - 60 + i)
    for i in range(25):
        es.add(
            "logs-shop",
            {"@timestamp": f"2026-12-06T12:{i:02d}:00Z", "service": SERVICE, "message": f"timeout {i}"},
        )
    k8s.add_deployment(SERVICE, image="pay:1.0", replicas=2)
    k8s.set_image("default", SERVICE, "pay:1.1")
    pods = [p["metadata"]["name"] for p in k8s.list_objects("pods", "default")]
    k8s.crash_loop("default", pods[0], restarts=7)
    k8s.add_event(
        "default", kind="Pod", name=pods[0], reason="BackOff", message="Back-off restarting failed container"
    )
    k8s.set_logs("default", pods[0], "starting\nHikariPool-1 - Connection is not available\n")


@asynccontextmanager
async def investigation(vigil: VigilHandle, budget: TokenBudget | None = None) -> AsyncIterator[Setup]:
    async with AsyncExitStack() as stack:
        prom = stack.enter_context(PrometheusServer())
        loki = stack.enter_context(LokiServer())
        es = stack.enter_context(ElasticsearchServer())
        k8s = stack.enter_context(KubernetesServer())
        seed_externals(prom, loki, es, k8s)
        project_id, key = await vigil.project_with_key("shop")
        await wait_for_records(vigil, project_id, await send_records(vigil, key))
        incident = await add_incident(vigil, project_id)
        ctx = context(vigil, settings(prom.base_url, loki.base_url, es.base_url, k8s.base_url), budget)
        stack.push_async_callback(ctx.http.aclose)
        stack.push_async_callback(ctx.aclose)
        yield Setup(vigil, project_id, key, incident, ctx, prom, loki, es, k8s)


def budget(tokens_per_incident: int | None = None) -> TokenBudget:
    return TokenBudget(MemoryUsageStore(), BudgetLimits(tokens_per_incident=tokens_per_incident))
