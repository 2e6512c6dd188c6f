"""`vigil incidents list|show` against a real runtime, with incidents opened by alerts."""

from __future__ import annotations

from tests.cli.test_admin import cli, cli_json
from tests.conftest import VigilHandle
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification


async def test_incidents_are_listed_and_shown(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key("shop")
    empty = await cli(vigil, "incidents", "list", "shop")
    assert empty.exit_code == 0 and "No incidents yet" in empty.output
    alert = alertmanager_alert(
        {"alertname": "DiskFull", "service": "db", "severity": "critical", "tier": "odd"}
    )
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
        json=alertmanager_notification(alert),
        headers={"X-API-Key": key},
    )
    incident_id = answer.json()["incidents"][0]["id"]
    listed = await cli(vigil, "incidents", "list", "shop")
    assert listed.exit_code == 0, listed.output
    assert incident_id in listed.output and "DiskFull" in listed.output and "critical" in listed.output
    [row] = await cli_json(vigil, "incidents", "list", "shop", "--status", "open")
    assert row["id"] == incident_id
    shown = await cli(vigil, "incidents", "show", "shop", incident_id)
    assert shown.exit_code == 0, shown.output
    assert "alert from alertmanager, tier human_only" in shown.output
    assert "'odd' is not one of" in shown.output
    missing = await cli(vigil, "incidents", "show", "shop", "nope")
    assert missing.exit_code != 0 and "nope" in missing.output


async def test_an_incidents_replays_are_listed(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key("shop")
    alert = alertmanager_alert({"alertname": "CheckoutErrors", "service": "checkout"})
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
        json=alertmanager_notification(alert),
        headers={"X-API-Key": key},
    )
    incident_id = answer.json()["incidents"][0]["id"]
    never = await cli(vigil, "incidents", "replays", "shop", incident_id)
    assert never.exit_code == 0 and "was never replayed" in never.stdout, never.output
    replay = {
        "target": "http://staging.example:8080",
        "reproduced": True,
        "attempted": 3,
        "failed": 2,
        "results": [],
    }
    stored = await vigil.api.post(
        f"/api/v1/projects/{project_id}/incidents/{incident_id}/replays", json=replay
    )
    assert stored.status_code == 201, stored.text
    [row] = await cli_json(vigil, "incidents", "replays", "shop", incident_id)
    assert row["id"] == stored.json()["id"] and row["failed"] == 2
    listed = await cli(vigil, "incidents", "replays", "shop", incident_id)
    assert listed.exit_code == 0, listed.output
    assert (
        "http://staging.example:8080" in listed.stdout and "2/3" in listed.stdout and "yes" in listed.stdout
    )
    missing = await cli(vigil, "incidents", "replays", "shop", "nope")
    assert missing.exit_code == 1 and "nope" in missing.output
