"""GET /api/v1/projects/{id}/records through a running Vigil: every accepted record, whether or not a
pipeline took it, redacted, with counts first; a key of the project or the admin token."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import VigilHandle
from tests.logs_factory import INFO, PROTOBUF, export_bytes


async def _send(vigil: VigilHandle, key: str, service: str, bodies: list[str], **kwargs: Any) -> None:
    response = await vigil.receiver.post(
        "/v1/logs", content=export_bytes(service, bodies, **kwargs), headers={**PROTOBUF, "X-API-Key": key}
    )
    assert response.status_code == 200, response.text


async def _records(vigil: VigilHandle, project_id: str, expected: int, **params: Any) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        response = await vigil.api.get(f"/api/v1/projects/{project_id}/records", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["counts"]["matched"] >= expected:
            return body
        assert asyncio.get_running_loop().time() < deadline, body["counts"]
        await asyncio.sleep(0.1)


async def test_records_of_a_project_without_pipelines_are_kept_redacted(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key("shop")
    other_id, other_key = await vigil.project_with_key("elsewhere")
    errors = [
        f"payment declined for card owner bob@example.com after {i}ms password=hunter2" for i in range(20)
    ]
    await _send(vigil, key, "payment-service", errors)
    await _send(vigil, key, "checkout", [f"served /cart in {i}ms" for i in range(30)], severity=INFO)

    everything = await _records(vigil, project_id, 50, limit=5)
    assert everything["counts"]["by_service"] == {"checkout": 30, "payment-service": 20}
    assert len(everything["records"]) == 5 and everything["window"]["records"] == 50
    assert "hunter2" not in str(everything) and "bob@example.com" not in str(everything)

    errors_only = await _records(vigil, project_id, 20, severity="error", limit=100)
    assert errors_only["counts"]["matched"] == 20
    assert {r["resourceAttributes"]["service.name"] for r in errors_only["records"]} == {"payment-service"}
    (template_id,) = errors_only["counts"]["by_template"]
    by_template = await _records(vigil, project_id, 20, template_id=template_id)
    assert by_template["counts"]["matched"] == 20
    grep = await _records(vigil, project_id, 1, grep=r"/cart in 1\dms")
    assert grep["counts"]["matched"] == 10
    assert (await _records(vigil, project_id, 0, grep="hunter2"))["counts"]["matched"] == 0

    summary = await vigil.api.get(
        f"/api/v1/projects/{project_id}/records/summary", params={"service": "checkout"}
    )
    assert summary.status_code == 200 and "records" not in summary.json()
    assert summary.json()["counts"]["matched"] == 30

    path = f"/api/v1/projects/{project_id}/records"
    as_project = await vigil.api.get(path, headers={"Authorization": "", "X-API-Key": key})
    assert as_project.status_code == 200 and as_project.json()["counts"]["matched"] == 50
    assert (
        await vigil.api.get(path, headers={"Authorization": "", "X-API-Key": other_key})
    ).status_code == 403
    assert (await vigil.api.get(path, headers={"Authorization": ""})).status_code == 401
    bad = await vigil.api.get(path, params={"grep": "(a)\\1", "severity": "loud"})
    assert bad.status_code == 422 and "grep" in bad.text and "severity" in bad.text
    other = await vigil.api.get(f"/api/v1/projects/{other_id}/records")
    assert other.json()["counts"]["matched"] == 0


async def test_the_project_pipelines_custom_redaction_applies(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key("custom")
    spec = {
        "filter": {"services": ["nobody"]},
        "agent": {"endpoint": "http://127.0.0.1:9/agent"},
        "redact": {"custom": [{"name": "customer", "pattern": "customer-[0-9]+"}]},
    }
    created = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/only-nobody", json=spec)
    assert created.status_code in (200, 201), created.text
    await _send(vigil, key, "billing", ["invoice failed for customer-4242"])
    body = await _records(vigil, project_id, 1)
    assert body["records"][0]["body"] == "invoice failed for [REDACTED:customer]"
