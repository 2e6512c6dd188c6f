"""Pasted logs (contract): `POST .../workflows` with a text/plain body starts an investigation-only
workflow, streamed and read like any other; lines are redacted before the analysis or the database
sees them; the analysis names its cause, a configured runbook, and citations that resolve to the
templates the workflow keeps; nothing is ever run. Bad input gets a clear 4xx."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import VigilHandle, make_settings, running
from vigil.workflow.store import WorkflowStore

TEXT = {"Content-Type": "text/plain"}
SECRET = "postgres://orders:Sup3rS3cret@db.internal:5432/orders"
POOL_LOGS = "\n".join(
    [
        *(
            f"2026-12-06T10:00:{n:02d}.120Z ERROR [http-nio-8080-exec-{n}] o.h.engine.jdbc.spi.SqlExceptionHelper"
            f" : HikariPool-1 - Connection is not available, request timed out after 3000{n}ms. url={SECRET}"
            for n in range(30)
        ),
        "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available",
        "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
        *(f"2026-12-06T10:01:{n:02d}.000Z INFO GET /health 200 {n} ms" for n in range(20)),
    ]
)
RUNBOOK = {
    "title": "Connection pool exhausted",
    "match": {"error_types": ["ConnectionPoolExhausted"]},
    "tier": "autonomous",
    "steps": [{"action": "notify", "params": {"message": "pool exhausted", "severity": "warning"}}],
}


async def investigate(vigil: VigilHandle, project_id: str, text: str) -> dict[str, Any]:
    base = f"/api/v1/projects/{project_id}/workflows"
    started = await vigil.api.post(base, content=text.encode(), headers=TEXT)
    assert started.status_code == 202, started.text
    workflow_id = started.json()["workflow_id"]
    steps = []
    async with vigil.api.stream("GET", f"{base}/{workflow_id}/stream") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                steps.append(orjson.loads(line.removeprefix("data:").strip()))
    assert [s["step"] for s in steps] == ["begin", "context", "analyse", "finish"]
    workflow = (await vigil.api.get(f"{base}/{workflow_id}")).json()
    assert workflow["status"] == steps[-1]["status"] == "analysed"
    return workflow


async def test_pasted_logs_are_investigated_redacted_and_cited(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    put = await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/pool-exhausted", json=RUNBOOK)
    assert put.status_code == 201, put.text

    workflow = await investigate(vigil, project_id, POOL_LOGS)

    analysis = workflow["analysis"]
    assert (analysis["error_type"], analysis["known"], analysis["engine"]) == (
        "ConnectionPoolExhausted",
        True,
        "rules",
    )
    assert analysis["confidence"] >= 0.7
    assert workflow["runbook_id"] == analysis["runbook_id"] == "pool-exhausted"
    # every citation names a template the workflow keeps, with the records it stands for
    row = await _row(vigil, project_id, workflow["id"])
    templates = {t["template_id"]: t for t in row["templates"]}
    assert analysis["citations"] and all(c["id"] in templates for c in analysis["citations"])
    assert (
        sum(t["count"] for t in templates.values()) == row["record_count"] == 50
    )  # the trace joins its line
    # a recommended runbook is never run: no plan, no approval, no action
    assert workflow["plan"] is None and workflow["approval_id"] is None
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/approvals")).json() == []
    # the secret never reached the analysis or the database
    assert "Sup3rS3cret" not in orjson.dumps(workflow).decode()
    assert "Sup3rS3cret" not in orjson.dumps(row).decode()
    listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/workflows")).json()
    assert [w["id"] for w in listed] == [workflow["id"]]


async def _row(vigil: VigilHandle, project_id: str, workflow_id: str) -> dict[str, Any]:
    """What the database keeps of the workflow, beyond what the API shows."""
    assert vigil.runtime.store is not None
    row = await WorkflowStore(vigil.runtime.store).get_workflow(project_id, workflow_id)
    return row.body


async def test_logs_that_decide_nothing_get_a_reasoned_dont_know(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    put = await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/pool-exhausted", json=RUNBOOK)
    assert put.status_code == 201
    text = "\n".join(f"2026-12-06 10:00:{n:02d},000 ERROR Request failed for order {n}" for n in range(20))

    workflow = await investigate(vigil, project_id, text)

    analysis = workflow["analysis"]
    assert (analysis["known"], analysis["error_type"], analysis["runbook_id"]) == (False, "Unknown", None)
    assert analysis["root_cause"].startswith("Unknown: ") and analysis["confidence"] <= 0.2
    assert workflow["runbook_id"] is None


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"", TEXT, 422, "no log lines"),
        (b"\n \n\t\n", TEXT, 422, "no log lines"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", TEXT, 422, "binary"),
        (b"\xff\xfe not utf-8", TEXT, 422, "UTF-8"),
        (b"ERROR boom", {"Content-Type": "application/json"}, 415, "text/plain"),
        (b"ERROR boom\n" * (400 * 1024), TEXT, 413, "bytes"),
    ],
    ids=["empty", "blank", "binary", "not-utf8", "json", "too-large"],
)
async def test_bad_input_gets_a_clear_4xx(
    vigil: VigilHandle, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    project_id, _ = await vigil.project_with_key()
    answer = await vigil.api.post(f"/api/v1/projects/{project_id}/workflows", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/workflows")).json() == []


async def test_unknown_project_is_a_404(vigil: VigilHandle) -> None:
    answer = await vigil.api.post("/api/v1/projects/nope/workflows", content=b"ERROR x", headers=TEXT)
    assert answer.status_code == 404


async def test_without_the_workflow_engine_the_api_runs_the_investigation(tmp_path: Any) -> None:
    settings = make_settings(tmp_path / "vigil", workflow={"enabled": False})
    async with running(settings) as vigil:
        project_id, _ = await vigil.project_with_key()
        workflow = await investigate(vigil, project_id, POOL_LOGS)
        assert workflow["analysis"]["error_type"] == "ConnectionPoolExhausted"
        assert workflow["analysis"]["runbook_id"] is None  # no runbook configured: none recommended
