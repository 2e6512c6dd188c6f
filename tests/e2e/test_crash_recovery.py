"""`kill -9` of `vigil up` after the receiver answered 200: nothing it accepted is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes
from tests.process import VigilProcess

pytestmark = pytest.mark.slow


async def test_kill_9_after_accept_then_restart_delivers_everything(tmp_path: Path) -> None:
    vigil = VigilProcess(tmp_path / "data", VIGIL_BUS__ACK_WAIT_S="3")
    await asyncio.to_thread(vigil.start)
    try:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=vigil.api_url, headers=admin, timeout=30) as api:
            project_id = (await api.post("/api/v1/projects", json={"name": "crash"})).json()["id"]
            key = (await api.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": "k"})).json()[
                "key"
            ]
            with AgentServer() as probe:
                agent_port = probe.port
            spec = {
                "filter": {"min_severity": "ERROR"},
                "batch": {"max_records": 10, "max_wait_ms": 100},
                "agent": {
                    "endpoint": f"http://127.0.0.1:{agent_port}/process",
                    "timeout_s": 5,
                    "retry": {"max_attempts": 100, "initial_backoff_s": 0.2, "max_backoff_s": 1.0},
                },
            }
            assert (
                await api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=spec)
            ).status_code == 200

        sent: list[str] = []
        async with httpx.AsyncClient(base_url=vigil.receiver_url, timeout=30) as receiver:
            for request in range(20):
                bodies = [f"error {request}-{i} at {time.time_ns()}" for i in range(25)]
                response = await receiver.post(
                    "/v1/logs",
                    content=export_bytes("payment-service", bodies),
                    headers={**PROTOBUF, "X-API-Key": key},
                )
                assert response.status_code == 200
                sent.extend(bodies)
        # Killed while every record is accepted and none has reached the (absent) agent.
        vigil.kill()

        await asyncio.to_thread(vigil.start)
        async with AgentServer(port=agent_port) as agent:
            deadline = time.monotonic() + 90
            while len({r["body"] for _, b in agent.batches() for r in b}) < len(sent):
                assert time.monotonic() < deadline, "not every record arrived after the restart"
                await asyncio.sleep(0.2)
            delivered = {r["body"] for _, b in agent.batches() for r in b}
            assert delivered == set(sent)
            for _, batch in agent.batches():
                bodies = [r["body"] for r in batch]
                assert len(bodies) == len(set(bodies)) <= 10
    finally:
        await asyncio.to_thread(vigil.stop)


async def test_the_attempt_count_goes_on_after_a_kill_9(tmp_path: Path) -> None:
    vigil = VigilProcess(tmp_path / "data", VIGIL_BUS__ACK_WAIT_S="3")
    await asyncio.to_thread(vigil.start)
    try:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with AgentServer() as agent:
            async with httpx.AsyncClient(base_url=vigil.api_url, headers=admin, timeout=30) as api:
                project_id = (await api.post("/api/v1/projects", json={"name": "attempts"})).json()["id"]
                key = (await api.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": "k"})).json()[
                    "key"
                ]
                spec = {
                    "filter": {},
                    "batch": {"max_records": 10, "max_wait_ms": 100},
                    "agent": {
                        "endpoint": agent.url,
                        "retry": {"max_attempts": 100, "initial_backoff_s": 0.2, "max_backoff_s": 0.4},
                    },
                }
                assert (
                    await api.put(f"/api/v1/projects/{project_id}/pipelines/all", json=spec)
                ).status_code == 200
            agent.fail_next(1000, 503)
            async with httpx.AsyncClient(base_url=vigil.receiver_url, timeout=30) as receiver:
                answer = await receiver.post(
                    "/v1/logs",
                    content=export_bytes("svc", ["keeps failing"]),
                    headers={**PROTOBUF, "X-API-Key": key},
                )
                assert answer.status_code == 200
            await agent.wait_for(4, timeout_s=30)
            await asyncio.sleep(0.3)  # the ledger writes attempts within 50 ms
            before = max(int(r.header("x-vigil-attempt") or 0) for r in agent.requests)
            assert before >= 4
            # the whole machine goes down: the bus's server too, before it can save its state
            nats_pid = int((vigil.data_dir / "nats" / "nats-server.pid").read_text())
            os.kill(nats_pid, signal.SIGKILL)
            vigil.kill()
            agent.clear()  # answers 200 from now on
            await asyncio.to_thread(vigil.start)
            [after] = await agent.wait_for(1, timeout_s=60)
            # the attempt cut short by the kill may be counted again, never more than that one
            assert int(after.header("x-vigil-attempt") or 0) >= before
    finally:
        await asyncio.to_thread(vigil.stop)
