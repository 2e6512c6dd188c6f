"""Pipeline filter regexes are users' patterns: they run in linear time (RE2) on the event loop
that routes every project's records, or are refused when saved."""

from __future__ import annotations

from tests.conftest import VigilHandle
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes


async def test_a_catastrophic_regex_neither_stalls_routing_nor_the_api(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    async with AgentServer() as agent:
        spec = {
            "filter": {"body": {"regex": "^(a+)+$"}},
            "batch": {"max_records": 10, "max_wait_ms": 50},
            "agent": {"endpoint": agent.url},
        }
        put = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/as", json=spec)
        assert put.status_code == 200, put.text
        # With a backtracking engine each of these takes 2^40 steps: days. RE2 takes microseconds.
        evil = ["a" * 40 + "!"] * 3
        sent = await vigil.receiver.post(
            "/v1/logs",
            content=export_bytes("checkout", [*evil, "a" * 27]),
            headers={**PROTOBUF, "X-API-Key": key},
        )
        assert sent.status_code == 200
        assert (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines/as")).status_code == 200
        await agent.wait_for(1)
        assert [r["body"] for _, batch in agent.batches() for r in batch] == ["a" * 27]
        # The receiver and the API share the router's event loop: both still answer.
        assert (await vigil.receiver.get("/readyz")).status_code == 200
        assert (await vigil.api.get(f"/api/v1/projects/{project_id}/stats")).status_code == 200


async def test_patterns_re2_cannot_run_are_refused_with_the_field_named(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    cases = {
        ("filter", "body"): {"filter": {"body": {"regex": r"(\w+) \1"}}},
        ("filter", "attributes", "user.id"): {"filter": {"attributes": {"user.id": {"regex": "(?<=u-)1"}}}},
        ("redact", "custom", 0, "pattern"): {
            "redact": {"custom": [{"name": "ids", "pattern": r"(?=id)\d+"}]}
        },
    }
    for loc, spec in cases.items():
        body = {**spec, "agent": {"endpoint": "builtin:error-summary"}}
        response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/bad", json=body)
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["error"] == "validation_error"
        assert "RE2 syntax" in error["message"]
        assert tuple(error["details"]["errors"][0]["loc"][1 : 1 + len(loc)]) == loc
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines")).json() == []
