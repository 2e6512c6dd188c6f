"""Several pipelines per project: each record goes to every pipeline whose filter matches."""

from __future__ import annotations

import asyncio

from tests.conftest import VigilHandle
from tests.doubles.agent import AgentServer
from tests.logs_factory import INFO, PROTOBUF, export_bytes


def spec(endpoint: str, filter_: dict[str, object]) -> dict[str, object]:
    return {
        "filter": filter_,
        "batch": {"max_records": 10, "max_wait_ms": 100},
        "agent": {"endpoint": endpoint},
    }


async def test_records_fan_out_to_every_matching_pipeline(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    async with AgentServer() as errors, AgentServer() as slow_checkout, AgentServer() as everything:
        pipelines = {
            "errors": spec(errors.url, {"min_severity": "ERROR"}),
            "slow-checkout": spec(
                slow_checkout.url,
                {
                    "services": ["checkout"],
                    "attributes": {"http.route": {"regex": "^/cart"}, "http.status_code": 504},
                    "body": {"contains": "TIMEOUT", "ignore_case": True},
                },
            ),
            "everything": spec(everything.url, {}),
        }
        for name, body in pipelines.items():
            response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/{name}", json=body)
            assert response.status_code == 200, response.text
        listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines")).json()
        assert [p["name"] for p in listed] == ["errors", "everything", "slow-checkout"]

        exports = [
            export_bytes(
                "checkout",
                ["upstream timeout after 30s"],
                attributes={"http.route": "/cart/add", "http.status_code": 504},
            ),
            export_bytes(
                "checkout",
                ["upstream timeout after 30s"],
                attributes={"http.route": "/pay", "http.status_code": 504},
            ),
            export_bytes(
                "checkout",
                ["all good"],
                severity=INFO,
                attributes={"http.route": "/cart", "http.status_code": 200},
            ),
            export_bytes("payment-service", ["card declined"]),
        ]
        for body in exports:
            response = await vigil.receiver.post(
                "/v1/logs", content=body, headers={**PROTOBUF, "X-API-Key": key}
            )
            assert response.status_code == 200

        await everything.wait_for(1)
        deadline = asyncio.get_running_loop().time() + 20
        while sum(len(b) for _, b in everything.batches()) < 4:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)

        def bodies(agent: AgentServer) -> list[tuple[str, str]]:
            return sorted(
                (r["resourceAttributes"]["service.name"], r["body"])
                for _, batch in agent.batches()
                for r in batch
            )

        assert bodies(everything) == [
            ("checkout", "all good"),
            ("checkout", "upstream timeout after 30s"),
            ("checkout", "upstream timeout after 30s"),
            ("payment-service", "card declined"),
        ]
        assert bodies(errors) == [
            ("checkout", "upstream timeout after 30s"),
            ("checkout", "upstream timeout after 30s"),
            ("payment-service", "card declined"),
        ]
        [(_, [matched])] = slow_checkout.batches()
        assert matched["attributes"] == {"http.route": "/cart/add", "http.status_code": 504}

        # A deleted pipeline takes nothing more.
        assert (
            await vigil.api.delete(f"/api/v1/projects/{project_id}/pipelines/everything")
        ).status_code == 204
        assert (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines/everything")).status_code == 404
        before = len(everything.requests)
        await vigil.receiver.post(
            "/v1/logs",
            content=export_bytes("payment-service", ["again"]),
            headers={**PROTOBUF, "X-API-Key": key},
        )
        await errors.wait_for(1, predicate=lambda r: b"again" in r.body)
        assert len(everything.requests) == before


async def test_pipeline_validation_errors(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    base = f"/api/v1/projects/{project_id}/pipelines"
    bad = [
        (
            "errors",
            {"filter": {"min_severity": "LOUD"}, "agent": {"endpoint": "http://x/p"}},
            "filter.min_severity",
        ),
        ("errors", {"batch": {"max_records": 0}, "agent": {"endpoint": "http://x/p"}}, "batch.max_records"),
        ("errors", {"agent": {"endpoint": "ftp://x/p"}}, "agent.endpoint"),
        (
            "errors",
            {"filter": {"attributes": {"a": {"regex": "("}}}, "agent": {"endpoint": "http://x/p"}},
            "filter.attributes",
        ),
        ("errors", {"agent": {"endpoint": "http://x/p"}, "surprise": 1}, "surprise"),
    ]
    for name, body, where in bad:
        response = await vigil.api.put(f"{base}/{name}", json=body)
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["error"] == "validation_error"
        assert where in error["message"], error["message"]
    response = await vigil.api.put(f"{base}/Bad.Name", json={"agent": {"endpoint": "http://x/p"}})
    assert response.status_code == 422
    missing = await vigil.api.put(
        "/api/v1/projects/nope/pipelines/errors", json={"agent": {"endpoint": "http://x/p"}}
    )
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_management_api_auth_and_conflicts(vigil: VigilHandle) -> None:
    async with __import__("httpx").AsyncClient(base_url=vigil.api_url) as anonymous:
        assert (await anonymous.get("/api/v1/projects")).status_code == 401
        wrong = await anonymous.get("/api/v1/projects", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/readyz")).json() == {"status": "ready"}
        assert (await anonymous.get("/docs")).status_code == 200
        assert "vigil_records_received_total" in (await anonymous.get("/metrics")).text
    await vigil.project_with_key("dup")
    again = await vigil.api.post("/api/v1/projects", json={"name": "dup"})
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert (await vigil.api.post("/api/v1/projects", json={"name": ""})).status_code == 422
