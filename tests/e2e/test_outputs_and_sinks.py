"""Agent outputs: idempotent intake, per-sink retries, sink dead letters and replay."""

from __future__ import annotations

import asyncio

from tests.conftest import VigilHandle
from tests.doubles.webhook_receiver import WebhookReceiver
from vigil.store.models import Batch
from vigil.store.repo import utcnow


async def a_batch(vigil: VigilHandle, project_id: str, request_id: str) -> None:
    assert vigil.runtime.store is not None
    now = utcnow()
    await vigil.runtime.store.add_batches(
        [
            Batch(
                request_id=request_id,
                project_id=project_id,
                pipeline="errors",
                record_count=2,
                records=[{"body": "a"}, {"body": "b"}],
                status="delivered",
                attempts=1,
                last_error=None,
                created_at=now,
                updated_at=now,
            )
        ]
    )


async def test_each_sink_retries_on_its_own_and_outputs_are_delivered_once(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    await a_batch(vigil, project_id, "req-a")
    async with WebhookReceiver(secret="one") as healthy, WebhookReceiver(secret="two") as flaky:
        flaky.fail_next(2, status=503)
        for rx, secret in ((healthy, "one"), (flaky, "two")):
            sink = {
                "type": "webhook",
                "url": rx.url,
                "secret": secret,
                "retry": {"initial_backoff_s": 0.1, "max_backoff_s": 0.2},
            }
            assert (
                await vigil.api.post(f"/api/v1/projects/{project_id}/sinks", json=sink)
            ).status_code == 201
        output = {"request_id": "req-a", "payload": {"summary": "pool exhausted", "severity": "critical"}}
        for _ in range(3):  # an agent retrying the same post
            response = await vigil.receiver.post(
                "/internal/agent-output", json=output, headers={"X-API-Key": key, "Idempotency-Key": "once"}
            )
            assert response.status_code == 200
        await flaky.wait_for(3)
        await asyncio.sleep(0.5)
        assert len(healthy.requests) == 1
        assert [r.status for r in flaky.requests] == [503, 503, 200]
        assert len({r.header("x-vigil-delivery") for r in flaky.requests}) == 1
        assert all(flaky.verify(r) for r in flaky.requests)
        outputs = (await vigil.api.get(f"/api/v1/projects/{project_id}/outputs")).json()
        assert len(outputs) == 1
        assert outputs[0]["batch"]["records"] == [{"body": "a"}, {"body": "b"}]
        assert outputs[0]["pipeline"] == "errors"


async def test_a_refusing_sink_dead_letters_and_replay_delivers(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    await a_batch(vigil, project_id, "req-b")
    async with WebhookReceiver(secret="s") as rx:
        rx.fail_next(1, status=410)
        sink = (
            await vigil.api.post(
                f"/api/v1/projects/{project_id}/sinks", json={"type": "webhook", "url": rx.url, "secret": "s"}
            )
        ).json()
        assert sink["spec"]["secret"] == "**********"
        response = await vigil.receiver.post(
            "/internal/agent-output",
            json={"request_id": "req-b", "payload": {"summary": "x"}},
            headers={"X-API-Key": key},
        )
        assert response.status_code == 200
        deadline = asyncio.get_running_loop().time() + 20
        while not (
            dead := (
                await vigil.api.get(f"/api/v1/projects/{project_id}/dead-letters", params={"kind": "sink"})
            ).json()
        ):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        assert dead[0]["target"] == sink["id"] and dead[0]["ref"] == response.json()["id"]
        assert "410" in dead[0]["error"]
        replay = await vigil.api.post(
            f"/api/v1/projects/{project_id}/dead-letters/replay", params={"kind": "sink"}
        )
        assert replay.json() == {"replayed": [dead[0]["id"]]}
        [delivered] = await rx.wait_for(1, predicate=lambda r: r.status == 200)
        assert delivered.json()["id"] == response.json()["id"]


async def test_outputs_are_redacted_before_they_are_stored_or_sent(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    await a_batch(vigil, project_id, "req-c")
    async with WebhookReceiver(secret="s") as rx:
        await vigil.api.post(
            f"/api/v1/projects/{project_id}/sinks", json={"type": "webhook", "url": rx.url, "secret": "s"}
        )
        echoed = {
            "summary": "login failed for ops@example.com",
            "details": {
                "dsn": "postgres://app:hunter2pass@db:5432/app",
                "steps": ["rotate key AKIAIOSFODNN7EXAMPLE"],
            },
            "count": 3,
        }
        response = await vigil.receiver.post(
            "/internal/agent-output",
            json={"request_id": "req-c", "payload": echoed},
            headers={"X-API-Key": key},
        )
        assert response.status_code == 200
        [delivery] = await rx.wait_for(1)
        payload = delivery.json()["payload"]
        assert payload == {
            "summary": "login failed for [REDACTED:email]",
            "details": {
                "dsn": "postgres://app:[REDACTED:url_password]@db:5432/app",
                "steps": ["rotate key [REDACTED:aws_access_key]"],
            },
            "count": 3,
        }
        stored = (await vigil.api.get(f"/api/v1/projects/{project_id}/outputs")).json()
        assert stored[0]["payload"] == payload
