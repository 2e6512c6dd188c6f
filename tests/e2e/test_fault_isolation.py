"""One project's records that the bus cannot take whole never stall another project's delivery."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from tests.conftest import VigilHandle
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes
from vigil.bus.topology import records_subject
from vigil.pipeline.fit import CUT_MARKER, TRUNCATED_ATTRIBUTE
from vigil.pipeline.view import ViewExport


def spec(endpoint: str) -> dict[str, object]:
    return {"filter": {}, "batch": {"max_records": 10, "max_wait_ms": 100}, "agent": {"endpoint": endpoint}}


async def test_an_oversized_export_is_split_and_cut_while_another_project_flows(vigil: VigilHandle) -> None:
    big_project, big_key = await vigil.project_with_key("big")
    small_project, small_key = await vigil.project_with_key("small")
    async with AgentServer() as big_agent, AgentServer() as small_agent:
        for project, agent in ((big_project, big_agent), (small_project, small_agent)):
            response = await vigil.api.put(f"/api/v1/projects/{project}/pipelines/all", json=spec(agent.url))
            assert response.status_code == 200, response.text

        sent_at: dict[str, float] = {}

        async def steady_traffic() -> None:
            for i in range(40):
                body = f"small record {i}"
                sent_at[body] = time.time()
                answer = await vigil.receiver.post(
                    "/v1/logs",
                    content=export_bytes("steady", [body]),
                    headers={**PROTOBUF, "X-API-Key": small_key},
                )
                assert answer.status_code == 200
                await asyncio.sleep(0.05)

        steady = asyncio.create_task(steady_traffic())
        await asyncio.sleep(0.3)
        # Two 600 KB records: one batch of them is over the bus's 1 MiB message limit. Then one
        # record of control characters whose JSON (six bytes each) is over the limit alone.
        oversized = [
            export_bytes("bulky", ["a" * 600_000, "b" * 600_000]),
            export_bytes("bulky", ["\x01" * 700_000]),
        ]
        for body in oversized:
            answer = await vigil.receiver.post(
                "/v1/logs", content=body, headers={**PROTOBUF, "X-API-Key": big_key}
            )
            assert answer.status_code == 200, answer.text
        await steady

        await small_agent.wait_for(1, predicate=lambda r: b"small record 39" in r.body, timeout_s=30)
        latencies = [
            request.received_at - sent_at[record["body"]]
            for request, batch in small_agent.batches()
            for record in batch
        ]
        assert len(latencies) == 40
        # Before, the router paused every project while it retried the oversized batch: the
        # other project's records waited 16-33 s. Now nothing waits for it.
        assert max(latencies) < 5.0, statistics.quantiles(latencies, n=10)

        deadline = asyncio.get_running_loop().time() + 30
        while sum(len(batch) for _, batch in big_agent.batches()) < 3:
            assert asyncio.get_running_loop().time() < deadline, big_agent.batches()
            await asyncio.sleep(0.1)
        records = [record for _, batch in big_agent.batches() for record in batch]
        assert sorted(len(r["body"]) for r in records if "\x01" not in r["body"]) == [600_000, 600_000]
        assert all(len(request.body) <= 1024 * 1024 for request, _ in big_agent.batches())
        [cut] = [r for r in records if "\x01" in r["body"]]
        assert cut["body"].endswith(CUT_MARKER)
        assert cut["attributes"][TRUNCATED_ATTRIBUTE] > 1024 * 1024
        assert 100_000 < len(cut["body"]) < 700_000  # cut as little as it must

        # nothing was dead-lettered, and nothing is left to redeliver
        dead = await vigil.api.get(f"/api/v1/projects/{big_project}/dead-letters")
        assert dead.json() == [], dead.text


async def test_a_records_message_with_a_malformed_attribute_is_dropped_once_and_others_flow(
    vigil: VigilHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """The router reads an attribute's bytes only when a pipeline needs them, so a message on the
    bus (not from Vigil's receivers, which publish only exports that parse whole) that breaks one
    is found out while it is routed: it is dropped once, as one that fails the first parse is,
    rather than redelivered until the consumer gives up on it."""
    project, key = await vigil.project_with_key("strict")
    async with AgentServer() as agent:
        response = await vigil.api.put(f"/api/v1/projects/{project}/pipelines/all", json=spec(agent.url))
        assert response.status_code == 200, response.text
        broken = ViewExport()
        rl = broken.resource_logs.add()
        record = rl.scope_logs.add().log_records.add()
        record.body.string_value = "broken"
        record.attributes.append(b"\x0a\x05ab")  # a key of five bytes, of which two are there
        assert vigil.runtime.bus is not None
        await vigil.runtime.bus.js.publish(records_subject(project), broken.SerializeToString())

        answer = await vigil.receiver.post(
            "/v1/logs",
            content=export_bytes("fine", ["a fine record"]),
            headers={**PROTOBUF, "X-API-Key": key},
        )
        assert answer.status_code == 200
        await agent.wait_for(1, predicate=lambda r: b"a fine record" in r.body, timeout_s=30)
        deadline = asyncio.get_running_loop().time() + 10
        while "undecodable records message dropped" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, caplog.text
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # a redelivery (after 1 s) would have come by now
    assert caplog.text.count("undecodable records message dropped") == 1
    assert "will be redelivered" not in caplog.text
    assert not any(b"broken" in request.body for request, _ in agent.batches())
