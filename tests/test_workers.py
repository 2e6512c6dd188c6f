"""`vigil up` with pipeline workers: routing and delivery in child processes, which come back when
one dies, and go when `vigil up` stops."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes
from tests.process import VigilProcess


def workers_of(pid: int) -> set[int]:
    """Child processes of `pid` running the pipeline service."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = set()
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"vigil" in command and b"pipeline" in command:
            found.add(child)
    return found


async def wait_for(condition: object, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_workers_route_and_deliver_and_come_back(tmp_path: Path) -> None:
    vigil = VigilProcess(tmp_path / "data", VIGIL_PIPELINE_WORKERS="2")
    await asyncio.to_thread(vigil.start)
    try:
        assert vigil.process is not None
        pid = vigil.process.pid
        await wait_for(lambda: len(workers_of(pid)) == 2, "two pipeline workers")
        first = workers_of(pid)
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with AgentServer() as agent:
            async with httpx.AsyncClient(base_url=vigil.api_url, headers=admin, timeout=30) as api:
                project_id = (await api.post("/api/v1/projects", json={"name": "workers"})).json()["id"]
                key = (await api.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": "k"})).json()[
                    "key"
                ]
                spec = {
                    "filter": {},
                    "batch": {"max_records": 10, "max_wait_ms": 100},
                    "agent": {"endpoint": f"http://127.0.0.1:{agent.port}/process", "timeout_s": 5},
                }
                response = await api.put(f"/api/v1/projects/{project_id}/pipelines/all", json=spec)
                assert response.status_code == 200

            sent: list[str] = []

            async def send(round_: int) -> None:
                async with httpx.AsyncClient(base_url=vigil.receiver_url, timeout=30) as receiver:
                    for request in range(10):
                        bodies = [f"event {round_}-{request}-{i}" for i in range(20)]
                        response = await receiver.post(
                            "/v1/logs",
                            content=export_bytes("checkout", bodies),
                            headers={**PROTOBUF, "X-API-Key": key},
                        )
                        assert response.status_code == 200
                        sent.extend(bodies)

            def delivered() -> set[str]:
                return {r["body"] for _, batch in agent.batches() for r in batch}

            await asyncio.sleep(1.0)  # the pipeline reaches the workers
            await send(0)
            await wait_for(lambda: delivered() >= set(sent), "every record delivered by the workers")

            # a worker that dies is started again, and records keep arriving
            os.kill(min(first), signal.SIGKILL)
            await wait_for(
                lambda: len(workers_of(pid)) == 2 and workers_of(pid) != first, "the dead worker replaced"
            )
            await send(1)
            await wait_for(lambda: delivered() >= set(sent), "every record delivered after the restart")
            last = workers_of(pid)
    finally:
        await asyncio.to_thread(vigil.stop)
    # a stopped `vigil up` stopped its workers first
    await wait_for(lambda: not any(Path(f"/proc/{w}").exists() for w in last), "workers gone", 10)
