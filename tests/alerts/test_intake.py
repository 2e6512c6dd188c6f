"""Alert intake through the real API: Alertmanager and Grafana webhooks into deduplicated incidents."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tests.conftest import VigilHandle
from tests.doubles.alerts import (
    alertmanager_alert,
    alertmanager_notification,
    grafana_alert,
    grafana_notification,
    resolved,
)


async def post(
    vigil: VigilHandle, project_id: str, source: str, body: object, **headers: str
) -> tuple[int, dict]:
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/{source}", json=body, headers=headers
    )
    return answer.status_code, answer.json()


async def incidents(vigil: VigilHandle, project_id: str) -> list[dict]:
    answer = await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_firing_alert_opens_an_incident_and_its_resolution_resolves_it(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    firing = alertmanager_alert(
        {
            "alertname": "CheckoutErrors",
            "service": "checkout",
            "severity": "critical",
            "tier": "autonomous",
            "runbook_id": "restart-checkout",
            "escalate_threshold": "0.8",
            "agent_action": "restart",
        },
        {"summary": "5xx ratio at 12%"},
    )
    status, answer = await post(
        vigil, project_id, "alertmanager", alertmanager_notification(firing), **{"X-API-Key": key}
    )
    assert status == 202, answer
    [touched] = answer["incidents"]
    assert touched["change"] == "opened" and touched["status"] == "open"

    [listed] = await incidents(vigil, project_id)
    assert listed["id"] == touched["id"]
    assert (listed["title"], listed["severity"], listed["services"]) == (
        "CheckoutErrors: 5xx ratio at 12%",
        "critical",
        ["checkout"],
    )
    detail = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{touched['id']}")).json()
    assert detail["kind"] == "alert" and detail["source"] == "alertmanager"
    assert (detail["tier"], detail["runbook_id"], detail["escalate_threshold"], detail["agent_action"]) == (
        "autonomous",
        "restart-checkout",
        0.8,
        "restart",
    )
    assert detail["fingerprint"] == firing["fingerprint"]

    # Alertmanager's http_config sends the key as a bearer token
    status, answer = await post(
        vigil,
        project_id,
        "alertmanager",
        alertmanager_notification(resolved(firing)),
        Authorization=f"Bearer {key}",
    )
    assert status == 202, answer
    assert answer["incidents"] == [
        {"id": touched["id"], "status": "resolved", "change": "resolved", "notifications": 2}
    ]
    [listed] = await incidents(vigil, project_id)
    assert listed["status"] == "resolved" and listed["resolved_at"] is not None


async def test_a_storm_of_1000_notifications_of_10_alerts_is_10_incidents(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    alerts = [alertmanager_alert({"alertname": f"Alert{i}", "service": f"svc-{i}"}) for i in range(10)]
    semaphore = asyncio.Semaphore(16)

    async def send(n: int) -> int:
        async with semaphore:
            status, _ = await post(
                vigil,
                project_id,
                "alertmanager",
                alertmanager_notification(alerts[n % 10]),
                **{"X-API-Key": key},
            )
            return status

    statuses = await asyncio.gather(*(send(n) for n in range(1000)))
    assert set(statuses) == {202}
    listed = await incidents(vigil, project_id)
    assert len(listed) == 10
    details = [
        (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{i['id']}")).json() for i in listed
    ]
    assert sorted(d["notifications"] for d in details) == [100] * 10


async def test_grafana_notifications_and_several_alerts_in_one(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    a = grafana_alert(
        {"alertname": "HighLatency", "service": "api", "severity": "warning"}, values={"B": 2.4}
    )
    b = grafana_alert(
        {"alertname": "HighLatency", "service": "web", "severity": "warning"}, values={"B": 3.1}
    )
    status, answer = await post(
        vigil, project_id, "grafana", grafana_notification(a, b), **{"X-API-Key": key}
    )
    assert status == 202, answer
    assert answer["accepted"] == 2 and len(answer["incidents"]) == 2
    listed = await incidents(vigil, project_id)
    assert sorted(i["services"][0] for i in listed) == ["api", "web"]
    status, answer = await post(
        vigil, project_id, "grafana", grafana_notification(resolved(a), b), **{"X-API-Key": key}
    )
    assert sorted(t["change"] for t in answer["incidents"]) == ["resolved", "updated"]


async def test_an_unknown_tier_is_taken_as_human_only_and_said(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    alert = alertmanager_alert({"alertname": "Odd", "tier": "yolo", "escalate_threshold": "high"})
    _, answer = await post(
        vigil, project_id, "alertmanager", alertmanager_notification(alert), **{"X-API-Key": key}
    )
    detail = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{answer['incidents'][0]['id']}")
    ).json()
    assert detail["tier"] == "human_only" and detail["escalate_threshold"] is None
    assert len(detail["label_problems"]) == 2


async def test_keys_are_checked_and_bad_bodies_refused_with_nothing_stored(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key("one")
    other_project, other_key = await vigil.project_with_key("two")
    body = alertmanager_notification(alertmanager_alert({"alertname": "A"}))
    assert (await post(vigil, project_id, "alertmanager", body))[0] == 401
    assert (await post(vigil, project_id, "alertmanager", body, **{"X-API-Key": "wrong"}))[0] == 401
    status, answer = await post(vigil, project_id, "alertmanager", body, **{"X-API-Key": other_key})
    assert status == 403 and answer["error"] == "forbidden"
    status, answer = await post(
        vigil, project_id, "alertmanager", {"version": "4", "alerts": []}, **{"X-API-Key": key}
    )
    assert status == 422 and answer["error"] == "validation_error"
    status, answer = await post(
        vigil,
        project_id,
        "alertmanager",
        {"alerts": [{"status": "burning", "startsAt": "x"}]},
        **{"X-API-Key": key},
    )
    assert status == 422 and "alerts" in answer["message"]
    assert await incidents(vigil, project_id) == []
    assert await incidents(vigil, other_project) == []
    # the admin token may post too (for trying the route with curl)
    status, _ = await post(
        vigil, project_id, "alertmanager", body, Authorization=vigil.api.headers["Authorization"]
    )
    assert status == 202
    # ... but not to a project that does not exist
    status, answer = await post(
        vigil, "no-such-project", "alertmanager", body, Authorization=vigil.api.headers["Authorization"]
    )
    assert status == 404 and answer["details"] == {"project_id": "no-such-project"}


async def test_lone_surrogates_in_json_are_stored_as_replacement_characters(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    body = '{"x": "\\udd3d", "alerts": [{"status": "firing", "startsAt": "2020-01-01T00:00:00Z", "labels": {"alertname": "A\\udd3d"}}]}'
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/grafana",
        content=body,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    [listed] = await incidents(vigil, project_id)
    assert listed["title"] == "A\ufffd"


@pytest.mark.slow
async def test_a_database_locked_past_its_wait_is_a_503_to_retry_and_nothing_half_stored(
    vigil: VigilHandle,
) -> None:
    project_id, key = await vigil.project_with_key()
    path = vigil.runtime.store.engine.url.database
    assert path
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # another writer keeps SQLite's one write lock (taken off the event loop: a write the API
    # finishes after its answer, as the audit entry of the key just made, must be able to end)
    await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
    try:
        firing = alertmanager_alert({"alertname": "Locked", "service": "checkout"}, {})
        answer = await vigil.receiver_raw.post(
            f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
            json=alertmanager_notification(firing),
            headers={"X-API-Key": key},
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    assert await incidents(vigil, project_id) == []
    # retried once the lock is free, it is stored
    status, body = await post(
        vigil, project_id, "alertmanager", alertmanager_notification(firing), **{"X-API-Key": key}
    )
    assert status == 202, body
    assert [i["title"] for i in await incidents(vigil, project_id)] == ["Locked"]
