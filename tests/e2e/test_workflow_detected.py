"""A detected incident (the detector's, from traces through the real receiver) goes through the
workflow when the project's policy asks for it: it acts, verifies the signal is gone, resolves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VigilHandle, make_settings, running
from tests.doubles.kubernetes_server import KubernetesServer
from tests.e2e.test_detection import checkout_request
from tests.e2e.test_workflow import TOKEN, k8s, workflow_of
from tests.otel import OtelTraces, span_exporter

__all__ = ["k8s"]


@pytest.fixture
async def fast_windows(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    settings = make_settings(
        tmp_path / "vigil", detect={"window_s": 1.0, "allowed_lateness_s": 0.2, "idle_grace_s": 0.5}
    )
    async with running(settings) as handle:
        yield handle


async def set_up(
    vigil: VigilHandle, k8s: KubernetesServer, *, verify_timeout_s: float = 20.0
) -> tuple[str, OtelTraces]:
    """A project whose slow checkout is restarted by a runbook, and traces that made it slow."""
    project_id, key = await vigil.project_with_key()
    runbook = {
        "match": {"services": ["checkout"], "signal_kinds": ["slow_endpoint"]},
        "tier": "autonomous",
        "steps": [
            {
                "action": "kubernetes.rollout_restart",
                "params": {"namespace": "shop", "deployment": "checkout"},
            }
        ],
        "verify": {"after_s": 3.0, "timeout_s": verify_timeout_s},
    }
    assert (
        await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/slow-checkout", json=runbook)
    ).status_code == 201
    policy = {
        "detected": {
            "enabled": True,
            "min_severity": "info",
            "signal_kinds": ["slow_endpoint"],
            "tier": "autonomous",
        },
        "actions": {
            "kubernetes": {
                "enabled": True,
                "dry_run": False,
                "namespaces": ["shop"],
                "connection": {"host": k8s.base_url, "token": TOKEN, "verify_tls": False},
            }
        },
    }
    assert (
        await vigil.api.put(f"/api/v1/projects/{project_id}/workflow-policy", json=policy)
    ).status_code == 200

    traces = OtelTraces("checkout", span_exporter(api_key=key, http_url=vigil.receiver_url))
    now = time.time_ns()
    for i in range(20):  # steady and fast
        checkout_request(traces, now - 3_000_000_000 + i * 10_000_000, 40, 2)
    await asyncio.to_thread(traces.provider.force_flush, 10_000)
    await asyncio.sleep(2.5)
    slow_checkouts(traces)
    await asyncio.to_thread(traces.provider.force_flush, 10_000)
    return project_id, traces


def slow_checkouts(traces: OtelTraces) -> None:
    start = time.time_ns()
    for i in range(20):  # a regression: 2.5 s per request
        checkout_request(traces, start + i * 10_000_000, 2500, 2)


async def first_incident(vigil: VigilHandle, project_id: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 30
    while not (incidents := (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()):
        assert asyncio.get_running_loop().time() < deadline, "no incident was opened"
        await asyncio.sleep(0.2)
    return dict(incidents[0])


async def test_a_detected_incident_is_remediated_and_verified(
    fast_windows: VigilHandle, k8s: KubernetesServer
) -> None:
    vigil = fast_windows
    project_id, traces = await set_up(vigil, k8s)
    await asyncio.to_thread(traces.close)
    incident = await first_incident(vigil, project_id)
    done = await workflow_of(vigil, project_id, incident["id"], "resolved")
    assert k8s.restarts("shop", "checkout") == 1
    steps = [(s["step"], s["status"]) for s in done["steps"]]
    assert ("execute", "done") in steps and ("verify", "cleared") in steps
    assert done["analysis"]["runbook_id"] == "slow-checkout"
    signals = {f"signal:{s['fingerprint']}" for s in done["context"]["signals"]}
    cited = {c["id"] for c in done["analysis"]["citations"]}
    assert signals & cited, cited
    for citation in cited:  # each one an id the investigation returned, shown again by the API
        answer = await vigil.api.get(f"/api/v1/projects/{project_id}/citations/{citation}")
        assert answer.status_code == 200, (citation, answer.text)


@pytest.mark.slow
async def test_a_regression_that_outlasts_the_action_is_rolled_back(
    fast_windows: VigilHandle, k8s: KubernetesServer
) -> None:
    vigil = fast_windows
    project_id, traces = await set_up(vigil, k8s, verify_timeout_s=6.0)
    incident = await first_incident(vigil, project_id)
    try:
        for _ in range(300):
            if k8s.restarts("shop", "checkout"):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the runbook's restart never came")
        for _ in range(8):  # still slow in the windows after the restart
            await asyncio.sleep(0.5)
            slow_checkouts(traces)
            await asyncio.to_thread(traces.provider.force_flush, 10_000)
        done = await workflow_of(vigil, project_id, incident["id"], "rolled_back")
    finally:
        await asyncio.to_thread(traces.close)
    verified = [s for s in done["steps"] if s["step"] == "verify"]
    assert verified[-1]["status"] == "not_cleared", verified
    assert verified[-1]["checks"] == {"signal gone": False}
