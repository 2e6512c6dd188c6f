"""Alert to verified remediation, through the real API, a real runtime with its DBOS engine, and a
local server speaking the Kubernetes API: each tier, approvals, expiry, and a failed verification
rolled back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dbos._dbos import _get_dbos_instance

from tests.conftest import ADMIN_TOKEN, VigilHandle, make_settings, running
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification, resolved
from tests.doubles.github_server import GitHubServer
from tests.doubles.kubernetes_server import KubernetesServer
from tests.doubles.webhook_receiver import WebhookReceiver
from tests.process import VigilProcess
from vigil.workflow import engine, flow

TOKEN = "k8s-test-token"


@pytest.fixture
async def k8s() -> AsyncIterator[KubernetesServer]:
    async with KubernetesServer(token=TOKEN) as server:
        server.add_deployment("checkout", "shop", image="shop:1.0", replicas=3)
        yield server


def runbook(tier: str = "supervised", *, after_s: float = 0.2, timeout_s: float = 3.0) -> dict[str, Any]:
    return {
        "title": "Restart checkout",
        "match": {"alert_labels": {"alertname": "CheckoutErrors"}},
        "tier": tier,
        "steps": [
            {
                "action": "kubernetes.rollout_restart",
                "params": {"namespace": "shop", "deployment": "checkout"},
            }
        ],
        "verify": {"after_s": after_s, "timeout_s": timeout_s},
    }


async def configure(
    vigil: VigilHandle, k8s: KubernetesServer, tier: str = "supervised", **policy: Any
) -> tuple[str, str]:
    project_id, key = await vigil.project_with_key()
    put = await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/restart-checkout", json=runbook(tier))
    assert put.status_code == 201, put.text
    body = {
        "actions": {
            "kubernetes": {
                "enabled": True,
                "dry_run": False,
                "namespaces": ["shop"],
                "connection": {"host": k8s.base_url, "token": TOKEN, "verify_tls": False},
            }
        },
        **policy,
    }
    answer = await vigil.api.put(f"/api/v1/projects/{project_id}/workflow-policy", json=body)
    assert answer.status_code == 200, answer.text
    return project_id, key


async def fire(vigil: VigilHandle, project_id: str, key: str, alert: dict[str, Any]) -> str:
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
        json=alertmanager_notification(alert),
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["incidents"][0]["id"])


async def workflow_of(
    vigil: VigilHandle, project_id: str, incident_id: str, status: str | None = None
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        listed = (
            await vigil.api.get(
                f"/api/v1/projects/{project_id}/workflows", params={"incident_id": incident_id}
            )
        ).json()
        if listed and (status is None or listed[0]["status"] == status):
            detail = await vigil.api.get(f"/api/v1/projects/{project_id}/workflows/{listed[0]['id']}")
            return dict(detail.json())
        assert asyncio.get_running_loop().time() < deadline, listed
        await asyncio.sleep(0.1)


def alert(tier: str) -> dict[str, Any]:
    return alertmanager_alert(
        {"alertname": "CheckoutErrors", "service": "checkout", "tier": tier}, {"summary": "5xx at 12%"}
    )


async def test_autonomous_acts_verifies_and_resolves(vigil: VigilHandle, k8s: KubernetesServer) -> None:
    project_id, key = await configure(vigil, k8s, tier="autonomous")
    firing = alert("autonomous")
    incident_id = await fire(vigil, project_id, key, firing)
    acted = await workflow_of(vigil, project_id, incident_id)
    deadline = asyncio.get_running_loop().time() + 20
    while k8s.restarts("shop", "checkout") == 0:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    await fire(vigil, project_id, key, resolved(firing))  # the problem cleared
    done = await workflow_of(vigil, project_id, incident_id, "resolved")
    assert done["id"] == acted["id"]
    assert k8s.restarts("shop", "checkout") == 1
    steps = [(s["step"], s["status"]) for s in done["steps"]]
    assert steps[:5] == [
        ("begin", "done"),
        ("context", "done"),
        ("analyse", "done"),
        ("plan", "done"),
        ("execute", "done"),
    ]
    assert done["context"]["alert"]["annotations"] == {"summary": "5xx at 12%"}
    assert ("verify", "cleared") in steps and steps[-1] == ("finish", "resolved")
    assert done["analysis"]["runbook_id"] == "restart-checkout"
    audit = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/audit", params={"subject": done["id"]})
    ).json()
    assert {a["kind"] for a in audit} >= {
        "workflow.begin",
        "workflow.execute",
        "workflow.verify",
        "workflow.finish",
    }


async def test_the_plan_step_run_again_after_its_first_action_repeats_neither_plan_nor_action(
    vigil: VigilHandle, k8s: KubernetesServer
) -> None:
    from vigil.workflow import flow  # the engine runs in this process

    project_id, key = await configure(vigil, k8s, tier="autonomous")
    book = runbook("autonomous", after_s=3600, timeout_s=3600)  # it waits before verifying
    put = await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/restart-checkout", json=book)
    assert put.status_code == 200, put.text
    incident_id = await fire(vigil, project_id, key, alert("autonomous"))
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        acted = await workflow_of(vigil, project_id, incident_id)
        if ("execute", "done") in [(s["step"], s["status"]) for s in acted["steps"]]:
            break
        assert asyncio.get_running_loop().time() < deadline, acted
        await asyncio.sleep(0.1)
    # as DBOS runs the step again when the process died after the action, before its checkpoint
    again = await flow._prepare_and_act(project_id, incident_id, acted["id"])
    assert again["runbook"]["id"] == "restart-checkout" and again["first"]["repeated"]
    assert k8s.restarts("shop", "checkout") == 1
    after = await workflow_of(vigil, project_id, incident_id)
    assert [(s["step"], s["status"]) for s in after["steps"]] == [
        ("begin", "done"),
        ("context", "done"),
        ("analyse", "done"),
        ("plan", "done"),
        ("execute", "done"),
    ]


async def test_supervised_waits_for_approval_then_acts(vigil: VigilHandle, k8s: KubernetesServer) -> None:
    project_id, key = await configure(vigil, k8s)
    firing = alert("supervised")
    incident_id = await fire(vigil, project_id, key, firing)
    waiting = await workflow_of(vigil, project_id, incident_id, "waiting_approval")
    [pending] = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/approvals", params={"status": "pending"})
    ).json()
    assert pending["workflow_id"] == waiting["id"] and pending["runbook_id"] == "restart-checkout"
    assert pending["plan"]["steps"] and "restart" in pending["plan"]["steps"][0]
    assert k8s.restarts("shop", "checkout") == 0
    url = f"/api/v1/projects/{project_id}/approvals/{pending['id']}"
    approved = await vigil.api.post(f"{url}/approve", json={"by": "ana@example.com", "reason": "go"})
    assert approved.status_code == 200, approved.text
    again = await vigil.api.post(f"{url}/reject", json={"by": "bob@example.com"})
    assert again.status_code == 409 and "approved by ana@example.com" in again.json()["message"]
    deadline = asyncio.get_running_loop().time() + 20
    while k8s.restarts("shop", "checkout") == 0:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    await fire(vigil, project_id, key, resolved(firing))
    done = await workflow_of(vigil, project_id, incident_id, "resolved")
    assert ("approval", "approved") in [(s["step"], s["status"]) for s in done["steps"]]
    decisions = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/audit", params={"kind": "approval"})
    ).json()
    assert [(d["actor"], d["detail"]["decision"]) for d in decisions] == [("ana@example.com", "approved")]


async def test_an_approval_answered_here_wakes_its_workflow_without_the_listener_poll(
    tmp_path: Path, k8s: KubernetesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DBOS's SQLite listener would first look for the message 300 s after it starts waiting, and
    # the workflow reads its approval by itself only every APPROVAL_POLL_S (300 s): an action within
    # 20 s of the answer comes from the engine's own wake-up
    monkeypatch.setattr(engine, "SQLITE_WAKE_POLL_S", 300.0)
    assert flow.APPROVAL_POLL_S >= 300
    async with running(make_settings(tmp_path / "vigil")) as vigil:
        system_db = _get_dbos_instance()._sys_db
        assert system_db._notification_listener_polling_interval_sec == 300.0
        project_id, key = await configure(vigil, k8s)
        incident_id = await fire(vigil, project_id, key, alert("supervised"))
        waiting = await workflow_of(vigil, project_id, incident_id, "waiting_approval")
        deadline = asyncio.get_running_loop().time() + 20
        while not system_db.notifications_map.snapshot():  # its recv is set up
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        [pending] = (
            await vigil.api.get(f"/api/v1/projects/{project_id}/approvals", params={"status": "pending"})
        ).json()
        assert pending["workflow_id"] == waiting["id"]
        approved = await vigil.api.post(
            f"/api/v1/projects/{project_id}/approvals/{pending['id']}/approve", json={"by": "ana@example.com"}
        )
        assert approved.status_code == 200, approved.text
        deadline = asyncio.get_running_loop().time() + 20
        while k8s.restarts("shop", "checkout") == 0:
            assert asyncio.get_running_loop().time() < deadline, "the approval did not wake its workflow"
            await asyncio.sleep(0.1)


async def test_a_rejected_approval_escalates_without_acting(
    vigil: VigilHandle, k8s: KubernetesServer
) -> None:
    project_id, key = await configure(vigil, k8s)
    incident_id = await fire(vigil, project_id, key, alert("supervised"))
    await workflow_of(vigil, project_id, incident_id, "waiting_approval")
    [pending] = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/approvals", params={"status": "pending"})
    ).json()
    rejected = await vigil.api.post(
        f"/api/v1/projects/{project_id}/approvals/{pending['id']}/reject",
        json={"by": "ana", "reason": "not now"},
    )
    assert rejected.status_code == 200
    done = await workflow_of(vigil, project_id, incident_id, "escalated")
    assert done["outcome"] == "approval rejected"
    assert k8s.restarts("shop", "checkout") == 0


async def test_an_expired_approval_escalates(vigil: VigilHandle, k8s: KubernetesServer) -> None:
    project_id, key = await configure(vigil, k8s, approval_expiry_s=1.0)
    incident_id = await fire(vigil, project_id, key, alert("supervised"))
    done = await workflow_of(vigil, project_id, incident_id, "escalated")
    assert done["outcome"] == "approval expired"
    [expired] = (await vigil.api.get(f"/api/v1/projects/{project_id}/approvals")).json()
    assert expired["status"] == "expired"
    late = await vigil.api.post(
        f"/api/v1/projects/{project_id}/approvals/{expired['id']}/approve", json={"by": "ana"}
    )
    assert late.status_code == 409
    assert k8s.restarts("shop", "checkout") == 0


async def test_human_only_is_recorded_and_never_acted_on(vigil: VigilHandle, k8s: KubernetesServer) -> None:
    project_id, key = await configure(vigil, k8s, tier="autonomous")
    incident_id = await fire(vigil, project_id, key, alert("human_only"))
    done = await workflow_of(vigil, project_id, incident_id, "recorded")
    assert [s["step"] for s in done["steps"]] == ["begin", "finish"]
    assert k8s.restarts("shop", "checkout") == 0 and not k8s.calls


async def test_a_failed_verification_rolls_back_and_escalates(
    vigil: VigilHandle, k8s: KubernetesServer
) -> None:
    project_id, key = await configure(vigil, k8s, tier="autonomous")
    incident_id = await fire(vigil, project_id, key, alert("autonomous"))  # never resolves
    done = await workflow_of(vigil, project_id, incident_id, "rolled_back")
    steps = [(s["step"], s["status"]) for s in done["steps"]]
    assert ("verify", "not_cleared") in steps and ("rollback", "done") in steps
    assert done["outcome"].startswith("verification failed")
    # restarted, then undone: the pod template is the one from before the restart again
    assert k8s.restarts("shop", "checkout") == 2
    template = k8s.get("deployments", "shop", "checkout")["spec"]["template"]["metadata"]
    assert "kubectl.kubernetes.io/restartedAt" not in (template.get("annotations") or {})


async def test_the_stream_replays_every_step_and_resumes(vigil: VigilHandle, k8s: KubernetesServer) -> None:
    project_id, key = await configure(vigil, k8s)
    incident_id = await fire(vigil, project_id, key, alert("supervised"))
    waiting = await workflow_of(vigil, project_id, incident_id, "waiting_approval")
    url = f"/api/v1/projects/{project_id}/workflows/{waiting['id']}/stream"
    events: list[tuple[str, str]] = []
    async with vigil.api.stream("GET", url) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("id:"):
                events.append(("id", line[3:].strip()))
            if line.startswith("data:") and '"approval"' in line:
                break
    ids = [value for kind, value in events if kind == "id"]
    assert len(ids) >= 4
    resumed: list[str] = []
    async with vigil.api.stream("GET", url, headers={"Last-Event-ID": ids[1]}) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("id:"):
                resumed.append(line[3:].strip())
            if len(resumed) == len(ids) - 2:
                break
    assert resumed == ids[2:]


@pytest.mark.slow
async def test_kill_9_after_the_action_resumes_at_verification_without_acting_again(
    tmp_path: Path, k8s: KubernetesServer
) -> None:
    vigil = VigilProcess(tmp_path / "data")
    await asyncio.to_thread(vigil.start)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=vigil.api_url, headers=admin, timeout=30) as api:
            project_id = (await api.post("/api/v1/projects", json={"name": "crash"})).json()["id"]
            key = (await api.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": "k"})).json()[
                "key"
            ]
            book = runbook("autonomous", after_s=4.0, timeout_s=30.0)
            assert (
                await api.put(f"/api/v1/projects/{project_id}/runbooks/restart-checkout", json=book)
            ).status_code == 201
            policy = {
                "actions": {
                    "kubernetes": {
                        "enabled": True,
                        "dry_run": False,
                        "namespaces": ["shop"],
                        "connection": {"host": k8s.base_url, "token": TOKEN, "verify_tls": False},
                    }
                }
            }
            assert (
                await api.put(f"/api/v1/projects/{project_id}/workflow-policy", json=policy)
            ).status_code == 200
            firing = alert("autonomous")
            sent = await api.post(
                f"/api/v1/projects/{project_id}/alerts/alertmanager",
                json=alertmanager_notification(firing),
                headers={"X-API-Key": key, "Authorization": ""},
            )
            assert sent.status_code == 202, sent.text
            deadline = asyncio.get_running_loop().time() + 30
            while k8s.restarts("shop", "checkout") == 0:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
        vigil.kill()  # acted, and now waiting out verify.after_s
        await asyncio.to_thread(vigil.start)
        async with httpx.AsyncClient(base_url=vigil.api_url, headers=admin, timeout=30) as api:
            resolved_sent = await api.post(
                f"/api/v1/projects/{project_id}/alerts/alertmanager",
                json=alertmanager_notification(resolved(firing)),
                headers={"X-API-Key": key, "Authorization": ""},
            )
            assert resolved_sent.status_code == 202
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                [workflow] = (await api.get(f"/api/v1/projects/{project_id}/workflows")).json()
                if workflow["status"] == "resolved":
                    break
                assert asyncio.get_running_loop().time() < deadline, workflow
                await asyncio.sleep(0.2)
            detail = (await api.get(f"/api/v1/projects/{project_id}/workflows/{workflow['id']}")).json()
        assert k8s.restarts("shop", "checkout") == 1  # the action was not repeated
        assert k8s.count_calls("patch", "deployments") == 1
        steps = [(s["step"], s["status"]) for s in detail["steps"]]
        assert steps.count(("execute", "done")) == 1 and steps[-1] == ("finish", "resolved")
    finally:
        await asyncio.to_thread(vigil.stop)


async def test_every_step_reaches_the_ticket_and_an_escalation_reaches_the_sinks(
    vigil: VigilHandle, k8s: KubernetesServer
) -> None:
    async with GitHubServer(token="ghp_test", repos=["acme/shop"]) as github, WebhookReceiver() as hook:
        tickets = {
            "type": "github",
            "base_url": github.api_url,
            "repo": "acme/shop",
            "token": "ghp_test",
            "seconds_between_requests": 0,
            "seconds_between_writes": 0,
        }
        project_id, key = await configure(vigil, k8s, tickets=tickets)
        sink = await vigil.api.post(
            f"/api/v1/projects/{project_id}/sinks", json={"type": "webhook", "url": hook.url}
        )
        assert sink.status_code == 201, sink.text
        policy = (await vigil.api.get(f"/api/v1/projects/{project_id}/workflow-policy")).json()
        assert policy["tickets"]["token"] == "**********"  # kept, never shown

        incident_id = await fire(vigil, project_id, key, alert("supervised"))
        await workflow_of(vigil, project_id, incident_id, "waiting_approval")
        [pending] = (
            await vigil.api.get(f"/api/v1/projects/{project_id}/approvals", params={"status": "pending"})
        ).json()
        await vigil.api.post(
            f"/api/v1/projects/{project_id}/approvals/{pending['id']}/reject", json={"by": "ana"}
        )
        done = await workflow_of(vigil, project_id, incident_id, "escalated")

        deadline = asyncio.get_running_loop().time() + 20
        while "escalated" not in github.issue("acme/shop", 1).labels:  # labelled after the finish step
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        [issue] = github.issues("acme/shop")
        assert issue.title.startswith("[vigil] CheckoutErrors") and "incident" in issue.labels
        assert done["ticket"]["key"] == "acme/shop#1"
        comments = github.comments("acme/shop", 1)
        for step in ("analyse", "plan", "approval"):
            assert any(c.startswith(f"**{step}**") for c in comments), comments
        assert any(c.startswith("**escalated**") for c in comments)
        assert "escalated" in issue.labels and issue.state == "open"

        await hook.wait_for(1, timeout_s=20)
        [delivered] = hook.payloads
        assert delivered["request_id"] == done["id"]
        assert (
            delivered["payload"]["kind"] == "escalation"
            and delivered["payload"]["summary"] == "approval rejected"
        )
        assert delivered["payload"]["ticket"]["key"] == "acme/shop#1"


async def test_a_policy_read_and_written_back_keeps_its_secrets(
    vigil: VigilHandle, k8s: KubernetesServer
) -> None:
    project_id, key = await configure(vigil, k8s, tier="autonomous")
    shown = (await vigil.api.get(f"/api/v1/projects/{project_id}/workflow-policy")).json()
    assert shown["actions"]["kubernetes"]["connection"]["token"] == "**********"
    written = await vigil.api.put(f"/api/v1/projects/{project_id}/workflow-policy", json=shown)
    assert written.status_code == 200, written.text
    other, _ = await vigil.project_with_key("other")
    refused = await vigil.api.put(f"/api/v1/projects/{other}/workflow-policy", json=shown)
    assert refused.status_code == 422 and "masked" in refused.json()["message"]
    # the stored token still works: the action reaches the cluster
    firing = alert("autonomous")
    await fire(vigil, project_id, key, firing)
    deadline = asyncio.get_running_loop().time() + 20
    while k8s.restarts("shop", "checkout") == 0:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
