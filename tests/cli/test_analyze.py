"""`vigil analyze FILE`: offline (the rules engine here, runbooks from files) and through the API
(`--server`, pasted logs followed to their end): root cause, confidence, runbook and evidence."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_admin import cli, invoke
from tests.conftest import VigilHandle

LOGS = "\n".join(
    [
        *(
            f"2026-12-06T10:00:{n:02d}Z ERROR [worker-{n}] KnexTimeoutError: Knex: Timeout acquiring a connection."
            " The pool is probably full. Are you missing a .transacting(trx) call? token=ghp_"
            + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
            for n in range(25)
        ),
        *(f"2026-12-06T10:01:{n:02d}Z INFO GET /health 200" for n in range(10)),
    ]
)
RUNBOOK = """\
id: db-pool
title: Database pool exhausted
match: {error_types: [ConnectionPoolExhausted]}
steps:
  - action: notify
    params: {message: pool}
"""


def files(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "app.log"
    log.write_text(LOGS)
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "db-pool.yaml").write_text(RUNBOOK)
    (books / "other.yaml").write_text(RUNBOOK.replace("db-pool", "other").replace("ConnectionPool", "Disk"))
    return log, books


async def test_offline_prints_cause_confidence_runbook_and_evidence(tmp_path: Path) -> None:
    log, books = files(tmp_path)
    result = await invoke(["analyze", str(log), "--runbooks", str(books)])
    assert result.exit_code == 0, result.output
    assert "Root cause: ConnectionPoolExhausted" in result.output
    assert "Runbook: db-pool (recommended, not run)" in result.output
    assert "Evidence:" in result.output and "Knex: Timeout acquiring a connection" in result.output
    assert "ghp_a1B2" not in result.output  # redacted before the engine saw it

    as_json = await invoke(["analyze", str(log), "--runbooks", str(books / "db-pool.yaml"), "--json"])
    analysis = json.loads(as_json.stdout)
    assert (analysis["error_type"], analysis["known"], analysis["runbook_id"]) == (
        "ConnectionPoolExhausted",
        True,
        "db-pool",
    )
    assert analysis["confidence"] >= 0.7 and analysis["evidence"][0]["count"] == 25

    without = json.loads((await invoke(["analyze", str(log), "--json"])).stdout)
    assert without["runbook_id"] is None  # only configured runbooks are ever recommended


async def test_offline_says_when_it_does_not_know(tmp_path: Path) -> None:
    log = tmp_path / "vague.log"
    log.write_text("\n".join(f"ERROR something went wrong in step {n}" for n in range(10)))
    result = await invoke(["analyze", str(log)])
    assert result.exit_code == 0, result.output
    assert "Root cause: don't know" in result.output and "Runbook: none fits" in result.output


async def test_bad_files_fail_clearly(tmp_path: Path) -> None:
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 20)
    result = await invoke(["analyze", str(binary)])
    assert result.exit_code == 1 and "binary data" in result.output
    empty = tmp_path / "empty.log"
    empty.write_text("")
    result = await invoke(["analyze", str(empty)])
    assert result.exit_code == 1 and "no log lines" in result.output
    result = await invoke(["analyze", str(tmp_path / "missing.log")])
    assert result.exit_code == 1 and "cannot read" in result.output


async def test_server_runs_the_investigation_through_the_api(vigil: VigilHandle, tmp_path: Path) -> None:
    project_id, _ = await vigil.project_with_key("shop")
    log, books = files(tmp_path)
    applied = await cli(vigil, "runbooks", "apply", "shop", str(books / "db-pool.yaml"))
    assert applied.exit_code == 0, applied.output

    result = await cli(vigil, "analyze", str(log), "--server", "--project", "shop", "--json")
    assert result.exit_code == 0, result.output
    analysis = json.loads(result.stdout)
    assert (analysis["error_type"], analysis["runbook_id"]) == ("ConnectionPoolExhausted", "db-pool")
    workflow = (
        await vigil.api.get(f"/api/v1/projects/{project_id}/workflows/{analysis['workflow_id']}")
    ).json()
    assert workflow["status"] == "analysed" and workflow["runbook_id"] == "db-pool"
    assert "ghp_a1B2" not in json.dumps(workflow)

    missing = await cli(vigil, "analyze", str(log), "--server")
    assert missing.exit_code == 1 and "--project" in missing.output
