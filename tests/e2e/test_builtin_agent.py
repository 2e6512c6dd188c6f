"""A storm through a deduplicating pipeline to the built-in agent: each distinct problem reaches
the agent once with its count, secrets never leave Vigil, and the analysis cites its evidence."""

from __future__ import annotations

import asyncio

import orjson

from tests.conftest import VigilHandle
from tests.logs_factory import PROTOBUF, export_bytes

SECRET = "postgres://app:Sup3rS3cret@db.internal:5432/orders"


async def test_storm_is_deduplicated_redacted_and_explained(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    spec = {
        "filter": {"min_severity": "ERROR"},
        "batch": {"max_records": 10, "max_wait_ms": 200},
        "agent": {"endpoint": "builtin:error-summary"},
        "dedupe": {"window_s": 2, "rollup_steps": [10, 100]},
    }
    response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/storm", json=spec)
    assert response.status_code == 200, response.text

    sent = 0
    for request in range(10):
        bodies = [
            f"HikariPool-1 - Connection is not available, request timed out after {30000 + i}ms ({SECRET})"
            for i in range(150)
        ]
        for service in ("payment-service", "checkout"):
            response = await vigil.receiver.post(
                "/v1/logs",
                content=export_bytes(service, bodies, attributes={"user.email": f"u{request}@example.com"}),
                headers={**PROTOBUF, "X-API-Key": key},
            )
            assert response.status_code == 200
            sent += len(bodies)

    async def represented() -> int:
        batches = (
            await vigil.api.get(f"/api/v1/projects/{project_id}/batches", params={"limit": 1000})
        ).json()
        return sum(b["represented"] for b in batches)

    deadline = asyncio.get_running_loop().time() + 30
    while await represented() < sent:
        assert asyncio.get_running_loop().time() < deadline, f"{await represented()} of {sent} represented"
        await asyncio.sleep(0.2)

    batches = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/batches", params={"limit": 1000, "records": True})
    ).json()
    items = [r for b in batches for r in b["records"]]
    assert sum(b["represented"] for b in batches) == sent
    assert len(items) <= 2 * 4  # per service: the first record, two roll-ups, the window's final count
    assert {i["dedupe"] for i in items} >= {"first", "rollup", "final"}
    assert {i["template"] for i in items} == {
        "<*> - Connection is not available, request timed out after <*>"
    }
    everything = orjson.dumps(batches).decode()
    assert "Sup3rS3cret" not in everything and "@example.com" not in everything

    deadline = asyncio.get_running_loop().time() + 20
    while len(outputs := (await vigil.api.get(f"/api/v1/projects/{project_id}/outputs")).json()) < len(
        batches
    ):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    payload = outputs[-1]["payload"]
    assert payload["agent"] == "builtin:error-summary" and payload["engine"] == "rules"
    assert payload["error_type"] == "ConnectionPoolExhausted" and payload["known"] is True
    assert payload["evidence"] and payload["evidence"][0]["count"] >= 1
    assert "Sup3rS3cret" not in orjson.dumps(outputs).decode()
