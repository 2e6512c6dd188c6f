"""What the UI tests set up through the real API: a runbook and a workflow policy acting on a local
Kubernetes API server, and Alertmanager alerts that open incidents."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import VigilHandle
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification
from tests.doubles.kubernetes_server import KubernetesServer

K8S_TOKEN = "k8s-ui-test-token"


def checkout_alert() -> dict[str, Any]:
    return alertmanager_alert(
        {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"},
        {"summary": "5xx at 12% on checkout"},
    )


async def supervised_restart(vigil: VigilHandle, project_id: str, k8s: KubernetesServer) -> None:
    """A runbook that restarts checkout once a person approves, verified when the alert clears."""
    runbook = {
        "title": "Restart checkout",
        "match": {"alert_labels": {"alertname": "CheckoutErrors"}},
        "tier": "supervised",
        "steps": [
            {
                "action": "kubernetes.rollout_restart",
                "params": {"namespace": "shop", "deployment": "checkout"},
            }
        ],
        "verify": {"after_s": 0.2, "timeout_s": 30.0},
    }
    put = await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/restart-checkout", json=runbook)
    assert put.status_code == 201, put.text
    policy = {
        "actions": {
            "kubernetes": {
                "enabled": True,
                "dry_run": False,
                "namespaces": ["shop"],
                "connection": {"host": k8s.base_url, "token": K8S_TOKEN, "verify_tls": False},
            }
        }
    }
    answer = await vigil.api.put(f"/api/v1/projects/{project_id}/workflow-policy", json=policy)
    assert answer.status_code == 200, answer.text


async def fire(vigil: VigilHandle, project_id: str, key: str, alert: dict[str, Any]) -> str:
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
        json=alertmanager_notification(alert),
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["incidents"][0]["id"])


async def pending_approval(vigil: VigilHandle, project_id: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        found = (await vigil.api.get(f"/api/v1/projects/{project_id}/approvals?status=pending")).json()
        if found:
            return dict(found[0])
        assert asyncio.get_running_loop().time() < deadline, "no approval was requested"
        await asyncio.sleep(0.1)
