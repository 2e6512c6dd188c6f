"""At-least-once delivery when agents fail: retries, dead letters and replay."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import VigilHandle
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes


async def wait_until(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await _call(predicate):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def _call(predicate: Any) -> bool:
    result = predicate()
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


def pipeline(endpoint: str, **retry: float) -> dict[str, Any]:
    return {
        "filter": {"min_severity": "ERROR"},
        "batch": {"max_records": 10, "max_wait_ms": 200},
        "agent": {
            "endpoint": endpoint,
            "timeout_s": 5,
            "retry": {"max_attempts": 50, "initial_backoff_s": 0.2, "max_backoff_s": 1.0, **retry},
        },
    }


async def send(vigil: VigilHandle, key: str, service: str, bodies: list[str]) -> None:
    response = await vigil.receiver.post(
        "/v1/logs", content=export_bytes(service, bodies), headers={**PROTOBUF, "X-API-Key": key}
    )
    assert response.status_code == 200, response.text


async def test_agent_down_then_back_every_record_delivered_once(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    with AgentServer() as first:
        port = first.port
    # The agent is down: connections are refused while records arrive.
    response = await vigil.api.put(
        f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline(f"http://127.0.0.1:{port}/process")
    )
    assert response.status_code == 200
    sent = [f"payment failed #{i}" for i in range(57)]
    for start in range(0, len(sent), 19):
        await send(vigil, key, "payment-service", sent[start : start + 19])
    await wait_until(lambda: _batches_with_status(vigil, project_id, "retrying"), timeout_s=15)
    async with AgentServer(port=port) as agent:
        await wait_until(lambda: sum(len(b) for _, b in agent.batches()) >= len(sent))
        await asyncio.sleep(1.0)
        batches = agent.batches()
    delivered = [r["body"] for _, b in batches for r in b]
    assert sorted(delivered) == sorted(sent)
    by_request: dict[str, list[str]] = {}
    for request, records in batches:
        bodies = [r["body"] for r in records]
        assert len(bodies) == len(set(bodies)) <= 10
        by_request.setdefault(request.header("x-request-id") or "", []).extend(bodies)
    assert len(by_request) == len(batches)
    listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/batches")).json()
    assert {b["status"] for b in listed} == {"delivered"}
    assert max(b["attempts"] for b in listed) > 1


async def _batches_with_status(vigil: VigilHandle, project_id: str, status: str) -> bool:
    listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/batches", params={"status": status})).json()
    return bool(listed)


async def test_client_error_dead_letters_and_replay_delivers(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    async with AgentServer() as agent:
        agent.fail_next(1, status=422)
        response = await vigil.api.put(
            f"/api/v1/projects/{project_id}/pipelines/errors", json=pipeline(agent.url)
        )
        assert response.status_code == 200
        await send(vigil, key, "payment-service", ["card declined: insufficient funds"])
        await wait_until(lambda: _dead_letters(vigil, project_id))
        [dead] = await _dead_letters(vigil, project_id)
        assert dead["kind"] == "batch" and dead["target"] == "errors" and "422" in dead["error"]
        assert len(agent.requests) == 1  # a 4xx is not retried
        batch = (await vigil.api.get(f"/api/v1/projects/{project_id}/batches/{dead['ref']}")).json()
        assert batch["status"] == "dead"

        replayed = await vigil.api.post(f"/api/v1/projects/{project_id}/dead-letters/{dead['id']}/replay")
        assert replayed.status_code == 200, replayed.text
        await agent.wait_for(1, predicate=lambda r: r.error is None)
        [(request, records)] = agent.batches()
        assert request.header("x-request-id") == dead["ref"]
        assert [r["body"] for r in records] == ["card declined: insufficient funds"]
        assert await _dead_letters(vigil, project_id) == []
        again = await vigil.api.post(f"/api/v1/projects/{project_id}/dead-letters/{dead['id']}/replay")
        assert again.status_code == 409
        assert again.json()["error"] == "conflict"


async def _dead_letters(vigil: VigilHandle, project_id: str) -> list[dict[str, Any]]:
    response = await vigil.api.get(f"/api/v1/projects/{project_id}/dead-letters")
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()
    return result


async def test_exhausted_retries_dead_letter(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    async with AgentServer() as agent:
        agent.fail_next(3, status=503)
        spec = pipeline(agent.url, max_attempts=3, initial_backoff_s=0.1, max_backoff_s=0.2)
        await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=spec)
        await send(vigil, key, "payment-service", ["upstream returned 503"])
        await wait_until(lambda: _dead_letters(vigil, project_id))
        [dead] = await _dead_letters(vigil, project_id)
        assert dead["attempts"] == 3 and "503" in dead["error"]
        assert len(agent.requests) == 3
        assert len({r.header("x-request-id") for r in agent.requests}) == 1
