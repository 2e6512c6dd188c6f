"""Feedback (contract) and learning from it, through the real API, a real runtime with its workflow
engine and a local server speaking the Kubernetes API: people's ratings and rejections change the
runbook the next analysis of a similar problem proposes, in that project and no other."""

from __future__ import annotations

from typing import Any

from tests.conftest import VigilHandle
from tests.doubles.alerts import alertmanager_alert
from tests.doubles.kubernetes_server import KubernetesServer
from tests.e2e.test_workflow import TOKEN, fire, k8s, runbook, workflow_of
from vigil.learning.examples import incident_examples

__all__ = ["k8s"]

SCALE = {
    "title": "Scale checkout out",
    "match": {"alert_labels": {"alertname": "CheckoutErrors"}},
    "tier": "supervised",
    "steps": [
        {
            "action": "kubernetes.scale",
            "params": {"namespace": "shop", "deployment": "checkout", "replicas": 6},
        }
    ],
}


async def project(vigil: VigilHandle, k8s: KubernetesServer, name: str) -> tuple[str, str]:
    """A project where two runbooks match the checkout alert equally: restart (first by id) and scale."""
    project_id, key = await vigil.project_with_key(name)
    for ident, spec in (("restart-checkout", runbook()), ("scale-checkout", SCALE)):
        put = await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/{ident}", json=spec)
        assert put.status_code == 201, put.text
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
    answer = await vigil.api.put(f"/api/v1/projects/{project_id}/workflow-policy", json=policy)
    assert answer.status_code == 200, answer.text
    return project_id, key


async def proposed(
    vigil: VigilHandle, project_id: str, key: str, instance: str, **labels: str
) -> dict[str, Any]:
    """The workflow of a new checkout alert (from another instance: the same problem), once it waits."""
    alert = alertmanager_alert(
        {
            "alertname": "CheckoutErrors",
            "service": "checkout",
            "tier": "supervised",
            "instance": instance,
            **labels,
        },
        {"summary": "5xx above 10% on checkout"},
    )
    incident_id = await fire(vigil, project_id, key, alert)
    return await workflow_of(vigil, project_id, incident_id, "waiting_approval")


async def feedback(vigil: VigilHandle, project_id: str, body: dict[str, Any]) -> Any:
    return await vigil.api.post(f"/api/v1/projects/{project_id}/feedback", json=body)


async def test_feedback_contract(vigil: VigilHandle, k8s: KubernetesServer) -> None:
    project_id, key = await project(vigil, k8s, "payments")
    other_id, _ = await project(vigil, k8s, "search")
    waiting = await proposed(vigil, project_id, key, "a")
    workflow_id = waiting["id"]
    assert waiting["analysis_id"] == f"{workflow_id}:analysis" and waiting["plan_id"] == f"{workflow_id}:plan"

    on_analysis = await feedback(
        vigil, project_id, {"target_id": waiting["analysis_id"], "rating": 4, "comment": "right cause"}
    )
    assert on_analysis.status_code == 201, on_analysis.text
    stored = on_analysis.json()
    assert {k: stored[k] for k in ("target_id", "target_kind", "rating", "helpful", "comment")} == {
        "target_id": f"{workflow_id}:analysis",
        "target_kind": "analysis",
        "rating": 4,
        "helpful": None,
        "comment": "right cause",
    }
    assert isinstance(stored["id"], int) and stored["created_at"].endswith(("Z", "+00:00"))
    on_plan = await feedback(vigil, project_id, {"target_id": waiting["plan_id"], "helpful": False})
    assert on_plan.status_code == 201 and on_plan.json()["target_kind"] == "plan"
    on_incident = await feedback(vigil, project_id, {"target_id": waiting["incident_id"], "rating": 2})
    assert on_incident.status_code == 201
    assert (
        on_incident.json()["target_kind"] == "workflow" and on_incident.json()["workflow_id"] == workflow_id
    )
    on_workflow = await feedback(vigil, project_id, {"target_id": workflow_id, "rating": 5, "helpful": True})
    assert on_workflow.status_code == 201 and on_workflow.json()["target_kind"] == "workflow"

    for wrong, field in (
        ({"target_id": workflow_id, "rating": 6}, "rating"),
        ({"target_id": workflow_id, "rating": 0}, "rating"),
        ({"target_id": workflow_id, "rating": True}, "rating"),
        ({"target_id": workflow_id, "helpful": "yes"}, "helpful"),
        ({"target_id": workflow_id, "rating": 3, "stars": 5}, "stars"),
        ({"target_id": workflow_id, "comment": "no judgement"}, "helpful"),
        ({"rating": 3}, "target_id"),
    ):
        answer = await feedback(vigil, project_id, wrong)
        assert answer.status_code == 422, (wrong, answer.text)
        assert field in answer.text
    unknown = await feedback(vigil, project_id, {"target_id": "wf-nothing-0", "rating": 3})
    assert unknown.status_code == 404
    assert (
        unknown.json()["message"]
        == f"no workflow, incident, analysis or plan 'wf-nothing-0' in project '{project_id}'"
    )
    assert (
        await feedback(vigil, project_id, {"target_id": "wf-nothing-0:plan", "rating": 3})
    ).status_code == 404
    for target in (workflow_id, waiting["plan_id"], waiting["incident_id"]):  # another project's
        assert (await feedback(vigil, other_id, {"target_id": target, "rating": 3})).status_code == 404

    url = f"/api/v1/projects/{project_id}/feedback"
    first = await vigil.api.get(url, params={"limit": 3})
    assert [f["target_kind"] for f in first.json()] == ["workflow", "workflow", "plan"]
    rest = await vigil.api.get(url, params={"limit": 3, "before_id": first.headers["X-Next-Before-Id"]})
    assert [f["target_id"] for f in rest.json()] == [
        f"{workflow_id}:analysis"
    ] and "X-Next-Before-Id" not in rest.headers
    assert len((await vigil.api.get(url, params={"target_id": workflow_id})).json()) == 1
    assert (await vigil.api.get(f"/api/v1/projects/{other_id}/feedback")).json() == []

    rejected = await vigil.api.post(
        f"/api/v1/projects/{project_id}/approvals/{workflow_id}:approval/reject", json={"by": "ana"}
    )
    assert rejected.status_code == 200, rejected.text
    stats = (await vigil.api.get(f"{url}/stats")).json()
    assert stats["count"] == 4 and stats["ratings"] == 3 and stats["mean_rating"] == round(11 / 3, 4)
    assert stats["helpful"] == 1 and stats["not_helpful"] == 1 and stats["helpful_ratio"] == 0.5
    assert stats["approvals"] == 0 and stats["rejections"] == 1
    assert (
        stats["by_target_kind"]["analysis"]["count"] == 1
        and stats["by_target_kind"]["analysis"]["mean_rating"] == 4
    )
    assert (
        stats["by_target_kind"]["workflow"]["count"] == 2
        and stats["by_target_kind"]["plan"]["helpful_ratio"] == 0.0
    )
    # rating 4: +0.5; not helpful: -1; rating 2: -0.5; rating 5 and helpful: +1; the rejection: four times a rating
    assert stats["reward"]["feedback"] == 0.0 and stats["reward"]["rejections"] == -4.0
    assert (
        stats["by_target_kind"]["analysis"]["reward"] == 0.5
        and stats["by_target_kind"]["plan"]["reward"] == -1.0
    )
    assert stats["weights"]["approval"] == 4 * stats["weights"]["rating"]
    assert (await vigil.api.get(f"/api/v1/projects/{other_id}/feedback/stats")).json()["count"] == 0
    audit = (await vigil.api.get(f"/api/v1/projects/{project_id}/audit", params={"kind": "feedback"})).json()
    assert sorted(a["subject"] for a in audit) == sorted(
        [f"{workflow_id}:analysis", f"{workflow_id}:plan", waiting["incident_id"], workflow_id]
    )


async def test_feedback_changes_the_next_proposal_and_stays_in_its_project(
    vigil: VigilHandle, k8s: KubernetesServer
) -> None:
    project_id, key = await project(vigil, k8s, "payments")
    other_id, other_key = await project(vigil, k8s, "search")

    first = await proposed(vigil, project_id, key, "a")
    assert first["runbook_id"] == "restart-checkout" and first["analysis"]["learned"]["similar_cases"] == []
    rated = await feedback(
        vigil,
        project_id,
        {"target_id": first["plan_id"], "rating": 1, "helpful": False, "comment": "a restart does not help"},
    )
    assert rated.status_code == 201

    second = await proposed(vigil, project_id, key, "b")  # the same problem, after the feedback
    assert second["runbook_id"] == "scale-checkout"
    learned = second["analysis"]["learned"]
    assert learned["changed"] is True and [c["workflow_id"] for c in learned["similar_cases"]] == [
        first["id"]
    ]
    assert "scale-checkout" in second["analysis"]["summary"]

    elsewhere = await proposed(vigil, other_id, other_key, "a")  # another project learns nothing from it
    assert (
        elsewhere["runbook_id"] == "restart-checkout"
        and elsewhere["analysis"]["learned"]["similar_cases"] == []
    )

    rejected = await vigil.api.post(
        f"/api/v1/projects/{project_id}/approvals/{second['approval_id']}/reject",
        json={"by": "ana", "reason": "not this"},
    )
    assert rejected.status_code == 200
    await workflow_of(vigil, project_id, second["incident_id"], "escalated")

    third = await proposed(vigil, project_id, key, "c")  # the rejected plan is not proposed again
    assert third["runbook_id"] == "restart-checkout"
    assert third["analysis"]["learned"]["not_proposed"] == [
        {"runbook_id": "scale-checkout", "rejected_in": second["id"], "incident_id": second["incident_id"]}
    ]
    assert "not proposed" in third["analysis"]["summary"]

    fourth = await proposed(
        vigil, project_id, key, "d", region="eu"
    )  # new evidence: it may be proposed again
    assert fourth["analysis"]["learned"]["not_proposed"] == []

    again = await proposed(vigil, other_id, other_key, "b")
    assert again["runbook_id"] == "restart-checkout" and again["analysis"]["learned"]["not_proposed"] == []
    assert k8s.restarts("shop", "checkout") == 0

    # an LLM analysis of such an incident would be shown the judged cases of its project only
    store = vigil.runtime.store
    assert store is not None
    incident = (await store.get_incident(project_id, first["incident_id"])).body
    shown = await incident_examples(store, project_id, incident, leave_out=first["id"])
    assert [(e["verdict"], e["runbook"], e["outcome"]) for e in shown] == [
        ("rejected", "scale-checkout", "rejected")
    ]
    assert await incident_examples(store, other_id, incident) == []
