"""Records partitions on a real (single) nats-server: exports spread over the partitions, the
router and the detector read every one, and every record reaches its pipeline once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import make_settings, running
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes
from vigil.bus.topology import DETECTOR_RECORDS_CONSUMER, ROUTER_CONSUMER, records_filter, records_stream


async def test_every_partition_is_written_and_read(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "vigil", bus={"records_partitions": 3}, detect={"from_records": True})
    async with running(settings) as vigil, AgentServer() as agent:
        bus = vigil.runtime.bus
        assert bus is not None
        js = bus.js
        for k in range(3):
            info = await js.stream_info(records_stream(k))
            assert info.config.subjects == [records_filter(k)]
            for consumer in (ROUTER_CONSUMER, DETECTOR_RECORDS_CONSUMER):
                await js.consumer_info(records_stream(k), consumer)
        assert await bus.spread_leaders() == 0  # not a cluster: nothing to spread

        project_id, key = await vigil.project_with_key()
        spec = {
            "filter": {"min_severity": "ERROR"},
            "batch": {"max_records": 7, "max_wait_ms": 100},
            "agent": {"endpoint": agent.url},
        }
        put = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/errors", json=spec)
        assert put.status_code == 200, put.text

        sent = [f"error {i}" for i in range(120)]
        for i in range(0, len(sent), 4):
            response = await vigil.receiver.post(
                "/v1/logs",
                content=export_bytes("svc", sent[i : i + 4]),
                headers={**PROTOBUF, "X-API-Key": key},
            )
            assert response.status_code == 200, response.text

        for k in range(3):
            assert (await js.stream_info(records_stream(k))).state.last_seq > 0, f"partition {k} unused"
        for _ in range(300):
            received = [r["body"] for _, batch in agent.batches() for r in batch]
            if len(received) >= len(sent):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # anything extra would arrive now
        batches = agent.batches()
        received = [r["body"] for _, batch in batches for r in batch]
        assert sorted(received) == sorted(sent)
        request_ids = [request.header("x-request-id") for request, _ in batches]
        assert len(set(request_ids)) == len(request_ids)
        # the detector read every partition too
        for k in range(3):
            for _ in range(100):
                consumer = await js.consumer_info(records_stream(k), DETECTOR_RECORDS_CONSUMER)
                if consumer.num_pending == 0 and consumer.num_ack_pending == 0:
                    break
                await asyncio.sleep(0.1)
            assert consumer.delivered.stream_seq == (await js.stream_info(records_stream(k))).state.last_seq
