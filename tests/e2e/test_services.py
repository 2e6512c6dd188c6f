"""The same product as separate services (`vigil api|receiver|pipeline|sink`), each its own
process, sharing one NATS server and one database, configured at run time through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.doubles.agent import AgentServer
from tests.doubles.webhook_receiver import WebhookReceiver
from tests.logs_factory import PROTOBUF, export_bytes
from tests.process import VigilProcess
from vigil.bus.server import ManagedNatsServer
from vigil.settings import BusSettings

pytestmark = pytest.mark.slow


@pytest.fixture
async def nats_url(tmp_path: Path) -> AsyncIterator[str]:
    server = ManagedNatsServer(tmp_path / "nats-host", BusSettings())
    await server.start()
    yield server.url
    await server.shutdown()


async def test_separate_services_deliver_end_to_end(tmp_path: Path, nats_url: str, database_url: str) -> None:
    env = {"VIGIL_NATS_URL": nats_url, "VIGIL_DATABASE_URL": database_url, "VIGIL_BUS__ACK_WAIT_S": "5"}
    services = {
        role: VigilProcess(tmp_path / role, command=(role,), **env)
        for role in ("api", "receiver", "pipeline", "sink")
    }
    for service in services.values():  # one after the other: each applies the migrations first
        await asyncio.to_thread(service.start)
    try:
        api = httpx.AsyncClient(
            base_url=services["api"].api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        receiver_url = services["receiver"].receiver_url
        project_id = (await api.post("/api/v1/projects", json={"name": "split"})).json()["id"]
        key = (await api.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": "k"})).json()["key"]
        async with (
            AgentServer(vigil_endpoint=receiver_url, api_key=key) as agent,
            WebhookReceiver(secret="s") as hook,
        ):
            spec = {
                "filter": {"min_severity": "ERROR"},
                "batch": {"max_records": 10, "max_wait_ms": 100},
                "agent": {"endpoint": agent.url},
            }
            assert (
                await api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=spec)
            ).status_code == 200
            sink = {"type": "webhook", "url": hook.url, "secret": "s"}
            assert (await api.post(f"/api/v1/projects/{project_id}/sinks", json=sink)).status_code == 201

            async with httpx.AsyncClient(base_url=receiver_url) as receiver:
                bodies = [f"payment {i} failed: card declined" for i in range(25)]
                sent = await receiver.post(
                    "/v1/logs",
                    content=export_bytes("payment-service", bodies),
                    headers={**PROTOBUF, "X-API-Key": key},
                )
                assert sent.status_code == 200
            await agent.wait_for(3, timeout_s=30)
            delivered = sorted(r["body"] for _, b in agent.batches() for r in b)
            assert delivered == sorted(bodies)
            deliveries = await hook.wait_for(3, timeout_s=30)
            assert all(hook.verify(d) for d in deliveries)
            outputs = (await api.get(f"/api/v1/projects/{project_id}/outputs")).json()
            assert len(outputs) == 3

        async with httpx.AsyncClient() as plain:
            for role in ("pipeline", "sink"):
                metrics = (await plain.get(f"{services[role].probe_url}/metrics")).text
                assert 'vigil_deliveries_total{kind="' in metrics
            received = (await plain.get(f"{services['receiver'].receiver_url}/metrics")).text
            assert 'vigil_records_received_total{transport="http"} 25.0' in received
        await api.aclose()
    finally:
        for service in services.values():
            await asyncio.to_thread(service.stop)
