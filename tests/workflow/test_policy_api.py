"""The workflow policy through the real API: what it holds is stored and read back as sent."""

from __future__ import annotations

from tests.conftest import VigilHandle


async def test_a_policy_with_file_paths_and_secrets_is_stored_and_read_back(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    policy = {
        "actions": {
            "kubernetes": {
                "enabled": True,
                "connection": {"host": "https://k8s.example.test", "ca_file": "/etc/vigil/ca.pem"},
            }
        },
        "tickets": {
            "type": "jira",
            "url": "https://jira.example.test",
            "project": "OPS",
            "email": "bot@example.test",
            "token": "jira-token-1234",
        },
    }
    url = f"/api/v1/projects/{project_id}/workflow-policy"
    put = await vigil.api.put(url, json=policy)
    assert put.status_code == 200, put.text
    stored = (await vigil.api.get(url)).json()
    assert stored["actions"]["kubernetes"]["connection"]["ca_file"] == "/etc/vigil/ca.pem"
    assert stored["tickets"]["token"] != "jira-token-1234"  # shown masked, kept sealed
