"""Two pipeline replicas on one PostgreSQL and one NATS run the workflows between them: every
workflow runs once, and no step (above all no action) runs twice; an alert posted to `vigil api`
starts its workflow at once, not at the replicas' next sweep."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification
from tests.doubles.service import Service
from tests.postgres import fresh_database
from tests.process import VigilProcess
from vigil.bus.server import ManagedNatsServer
from vigil.settings import BusSettings

pytestmark = pytest.mark.slow

ALERTS = 20


@pytest.fixture
async def nats_url(tmp_path: Path) -> AsyncIterator[str]:
    server = ManagedNatsServer(tmp_path / "nats-host", BusSettings())
    await server.start()
    yield server.url
    await server.shutdown()


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


async def test_two_replicas_run_each_workflow_once(tmp_path: Path, nats_url: str, database_url: str) -> None:
    env = {"VIGIL_NATS_URL": nats_url, "VIGIL_DATABASE_URL": database_url}
    api = VigilProcess(tmp_path / "api", command=("api",), **env)
    replicas = [
        VigilProcess(
            tmp_path / f"pipeline-{n}",
            command=("pipeline",),
            VIGIL_WORKFLOW__EXECUTOR_ID=f"replica-{n}",
            # no sweep after the first: only the API's word over the bus can start these workflows
            VIGIL_WORKFLOW__SWEEP_S="3600",
            **env,
        )
        for n in (1, 2)
    ]
    for process in (api, *replicas):  # one after the other: each applies the migrations first
        await asyncio.to_thread(process.start)
    try:
        async with (
            Service() as ops,
            httpx.AsyncClient(
                base_url=api.api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
            ) as client,
        ):
            project_id = (await client.post("/api/v1/projects", json={"name": "replicas"})).json()["id"]
            key = (await client.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": "k"})).json()[
                "key"
            ]
            runbook = {
                "match": {"alert_labels": {"team": "ops"}},
                "tier": "autonomous",
                "steps": [
                    {
                        "action": "http.request",
                        "params": {"url": f"{ops.base_url}/restart", "json_body": {"x": 1}},
                    },
                    {"action": "notify", "params": {"message": "restarted"}},
                ],
                "verify": {"after_s": 0, "timeout_s": 0.5, "alert_resolved": False},
            }
            assert (
                await client.put(f"/api/v1/projects/{project_id}/runbooks/ops", json=runbook)
            ).status_code == 201
            policy = {
                "actions": {"http": {"enabled": True, "dry_run": False, "url_prefixes": [f"{ops.base_url}/"]}}
            }
            assert (
                await client.put(f"/api/v1/projects/{project_id}/workflow-policy", json=policy)
            ).status_code == 200
            for n in range(ALERTS):
                alert = alertmanager_alert({"alertname": f"Alert{n}", "team": "ops", "tier": "autonomous"})
                sent = await client.post(
                    f"/api/v1/projects/{project_id}/alerts/alertmanager",
                    json=alertmanager_notification(alert),
                    headers={"X-API-Key": key, "Authorization": ""},
                )
                assert sent.status_code == 202, sent.text
            deadline = asyncio.get_running_loop().time() + 90
            while True:
                workflows = (await client.get(f"/api/v1/projects/{project_id}/workflows")).json()
                if len(workflows) == ALERTS and all(w["status"] == "resolved" for w in workflows):
                    break
                assert asyncio.get_running_loop().time() < deadline, [w["status"] for w in workflows]
                await asyncio.sleep(0.5)
            details = [
                (await client.get(f"/api/v1/projects/{project_id}/workflows/{w['id']}")).json()
                for w in workflows
            ]
        calls = Counter(r.header("idempotency-key") for r in ops.requests)
        assert len(calls) == ALERTS and set(calls.values()) == {1}, calls
        for detail in details:
            steps = [(s["step"], s["status"]) for s in detail["steps"]]
            assert steps.count(("execute", "done")) == 2 and steps.count(("begin", "done")) == 1, steps
        logs = "".join(p.log.read_text() for p in replicas)
        assert "Traceback" not in logs
    finally:
        for process in (*replicas, api):
            await asyncio.to_thread(process.stop)
