"""The admin commands against a real runtime: what they print, what they change, and how they fail."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from tests.conftest import ADMIN_TOKEN, VigilHandle
from tests.doubles.agent import AgentServer
from vigil.cli.main import app
from vigil.demo_traffic import generate_requests

runner = CliRunner()


async def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    # The runtime lives on this test's event loop: the blocking CLI must run elsewhere.
    # A wide "terminal" keeps table cells on one line, so they can be looked for in the output.
    return await asyncio.to_thread(runner.invoke, app, args, env={"COLUMNS": "250", **(env or {})})


async def cli(vigil: VigilHandle, *args: str) -> Result:
    return await invoke([*args, "--api-url", vigil.api_url, "--token", ADMIN_TOKEN])


async def cli_json(vigil: VigilHandle, *args: str) -> Any:
    result = await cli(vigil, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def send_logs(vigil: VigilHandle, key: str, records: int = 1) -> int:
    request = next(generate_requests(records, records_per_request=records, seed=7))
    response = await vigil.receiver.post(
        "/v1/logs",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf", "X-API-Key": key},
    )
    return response.status_code


async def test_project_create_list_and_resolve_by_name(vigil: VigilHandle) -> None:
    created = await cli_json(vigil, "project", "create", "payments")
    assert created["name"] == "payments"

    listed = await cli_json(vigil, "project", "list")
    assert [(p["id"], p["name"]) for p in listed] == [(created["id"], "payments")]
    table = await cli(vigil, "project", "list")
    assert table.exit_code == 0 and "payments" in table.stdout and created["id"] in table.stdout

    by_name = await cli_json(vigil, "key", "list", "payments")
    by_id = await cli_json(vigil, "key", "list", created["id"])
    assert by_name == by_id == []

    missing = await cli(vigil, "key", "list", "no-such-project")
    assert missing.exit_code == 1
    assert "no project with id or name 'no-such-project'" in missing.stderr

    again = await cli(vigil, "project", "create", "payments")
    assert again.exit_code == 1
    assert "a project named 'payments' exists (conflict, HTTP 409)" in again.stderr

    deleted = await cli(vigil, "project", "delete", "payments")
    assert deleted.exit_code == 0, deleted.output
    assert await cli_json(vigil, "project", "list") == []


async def test_key_create_list_and_revoke(vigil: VigilHandle) -> None:
    await cli(vigil, "project", "create", "payments")

    created = await cli(vigil, "key", "create", "payments", "--name", "ci")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("vgl_") and "\n" not in key
    assert "shown once" in created.stderr
    assert await send_logs(vigil, key) == 200

    keys = await cli_json(vigil, "key", "list", "payments")
    assert [(k["name"], k["prefix"], k["revoked"]) for k in keys] == [("ci", key[:12], False)]
    table = await cli(vigil, "key", "list", "payments")
    assert "active" in table.stdout and key not in table.stdout

    revoked = await cli(vigil, "key", "revoke", "payments", keys[0]["id"])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked key" in revoked.stdout
    assert await send_logs(vigil, key) == 401
    assert (await cli_json(vigil, "key", "list", "payments"))[0]["revoked"] is True


async def test_pipeline_set_with_flags_then_get(vigil: VigilHandle) -> None:
    await cli(vigil, "project", "create", "payments")
    result = await cli(
        vigil,
        *("pipeline", "set", "payments", "errors", "--agent", "http://127.0.0.1:9/process"),
        *("--min-severity", "ERROR", "--service", "payment-service", "--service", "checkout"),
        *("--attr", "http.route=/api/checkout", "--attr", "db.system=postgresql"),
        *("--body-contains", "refused", "--max-records", "5", "--max-wait-ms", "250", "--timeout-s", "12"),
    )
    assert result.exit_code == 0, result.output
    assert "saved pipeline errors" in result.stdout

    shown = await cli(vigil, "pipeline", "get", "payments", "errors")
    assert shown.exit_code == 0, shown.output
    spec = json.loads(shown.stdout)
    assert spec["filter"] == {
        "kinds": ["log"],
        "min_severity": 17,
        "services": ["payment-service", "checkout"],
        "attributes": {"http.route": {"equals": "/api/checkout"}, "db.system": {"equals": "postgresql"}},
        "resource_attributes": {},
        "body": {"contains": "refused", "ignore_case": False},
    }
    assert spec["batch"] == {"max_records": 5, "max_wait_ms": 250, "max_bytes": 1024 * 1024}
    assert spec["agent"]["endpoint"] == "http://127.0.0.1:9/process"
    assert spec["agent"]["timeout_s"] == 12
    assert spec["enabled"] is True

    listed = await cli(vigil, "pipeline", "list", "payments")
    assert "errors" in listed.stdout and "severity>=ERROR" in listed.stdout

    deleted = await cli(vigil, "pipeline", "delete", "payments", "errors")
    assert deleted.exit_code == 0, deleted.output
    gone = await cli(vigil, "pipeline", "get", "payments", "errors")
    assert gone.exit_code == 1 and "not_found" in gone.stderr

    incidents = await cli(
        vigil,
        "pipeline",
        "set",
        "payments",
        "on-call",
        "--agent",
        "http://127.0.0.1:9/process",
        "--kind",
        "incident",
    )
    assert incidents.exit_code == 0, incidents.output
    assert "kinds incident" in incidents.stdout
    shown = await cli(vigil, "pipeline", "get", "payments", "on-call")
    assert json.loads(shown.stdout)["filter"]["kinds"] == ["incident"]
    wrong = await cli(
        vigil, "pipeline", "set", "payments", "x", "--agent", "http://127.0.0.1:9/p", "--kind", "metric"
    )
    assert wrong.exit_code != 0 and "kinds" in wrong.output


async def test_pipeline_set_from_a_yaml_file(vigil: VigilHandle, tmp_path: Path) -> None:
    await cli(vigil, "project", "create", "payments")
    path = tmp_path / "spec.yaml"
    path.write_text(
        "filter:\n  min_severity: WARN\n  body: {regex: 'pool (exhausted|empty)'}\n"
        "batch: {max_records: 20}\nagent:\n  endpoint: http://agent:8000/process\n"
    )
    result = await cli(vigil, "pipeline", "set", "payments", "from-file", "--file", str(path))
    assert result.exit_code == 0, result.output
    spec = json.loads((await cli(vigil, "pipeline", "get", "payments", "from-file")).stdout)
    assert spec["filter"]["min_severity"] == 13
    assert spec["filter"]["body"]["regex"] == "pool (exhausted|empty)"
    assert spec["batch"] == {"max_records": 20, "max_wait_ms": 500, "max_bytes": 1024 * 1024}

    both = await cli(vigil, "pipeline", "set", "payments", "x", "--file", str(path), "--agent", "http://a/")
    assert both.exit_code == 2 and "not both" in both.output


async def test_pipeline_set_with_a_bad_value_shows_the_validation_error(vigil: VigilHandle) -> None:
    await cli(vigil, "project", "create", "payments")
    agent = ("--agent", "http://127.0.0.1:9/process")

    loud = await cli(vigil, "pipeline", "set", "payments", "errors", *agent, "--min-severity", "LOUD")
    assert loud.exit_code == 1
    assert "error: filter.min_severity:" in loud.stderr
    assert "unknown severity 'LOUD'" in loud.stderr and "validation_error, HTTP 422" in loud.stderr
    assert len(loud.stderr.strip().splitlines()) == 1
    assert loud.exception is None or isinstance(loud.exception, SystemExit)

    zero = await cli(vigil, "pipeline", "set", "payments", "errors", *agent, "--max-records", "0")
    assert zero.exit_code == 1 and "batch.max_records" in zero.stderr

    not_url = await cli(vigil, "pipeline", "set", "payments", "errors", "--agent", "ftp://agent")
    assert not_url.exit_code == 1 and "agent.endpoint" in not_url.stderr

    bad_name = await cli(vigil, "pipeline", "set", "payments", "Bad.Name", *agent)
    assert bad_name.exit_code == 1 and "validation_error" in bad_name.stderr

    assert await cli_json(vigil, "pipeline", "list", "payments") == []


async def test_sink_add_list_and_delete(vigil: VigilHandle) -> None:
    await cli(vigil, "project", "create", "payments")
    webhook = await cli(
        vigil,
        "sink",
        "add",
        "payments",
        "webhook",
        "--url",
        "https://hooks.example.com/vigil",
        "--secret",
        "s3cr3t",
    )
    assert webhook.exit_code == 0, webhook.output
    slack = await cli(
        vigil, "sink", "add", "payments", "slack", "--webhook-url", "https://hooks.slack.com/services/T/B/X"
    )
    assert slack.exit_code == 0, slack.output

    sinks = await cli_json(vigil, "sink", "list", "payments")
    assert sorted(s["type"] for s in sinks) == ["slack", "webhook"]
    hook = next(s for s in sinks if s["type"] == "webhook")
    assert hook["spec"]["url"] == "https://hooks.example.com/vigil"
    assert hook["spec"]["secret"] == "**********"
    table = await cli(vigil, "sink", "list", "payments")
    assert "hooks.example.com" in table.stdout and "s3cr3t" not in table.stdout
    assert "hooks.slack.com" not in table.stdout

    no_url = await cli(vigil, "sink", "add", "payments", "webhook")
    assert no_url.exit_code == 2 and "--url" in no_url.output
    bad_url = await cli(vigil, "sink", "add", "payments", "webhook", "--url", "not a url")
    assert bad_url.exit_code == 1 and "url" in bad_url.stderr

    deleted = await cli(vigil, "sink", "delete", "payments", hook["id"])
    assert deleted.exit_code == 0, deleted.output
    assert [s["type"] for s in await cli_json(vigil, "sink", "list", "payments")] == ["slack"]


async def test_outputs_batches_stats_and_dead_letters(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key("payments")
    async with AgentServer(vigil_endpoint=vigil.receiver_url, api_key=key) as agent:
        result = await cli(
            vigil, "pipeline", "set", "payments", "all", "--agent", agent.url, "--max-records", "10"
        )
        assert result.exit_code == 0, result.output
        agent.fail_next(1, status=400)  # a 4xx is final: that batch goes straight to the dead letters
        assert await send_logs(vigil, key, records=30) == 200
        await agent.wait_for(3)

        async def settled() -> dict[str, Any]:
            for _ in range(100):
                stats: dict[str, Any] = await cli_json(vigil, "stats", "payments")
                if stats["outputs"] == 2 and stats["dead_letters"] == 1:
                    return stats
                await asyncio.sleep(0.1)
            raise AssertionError(f"not settled: {stats}")

        stats = await settled()
        assert stats["batches"]["delivered"] == {"batches": 2, "records": 20}
        assert stats["batches"]["dead"] == {"batches": 1, "records": 10}

        outputs = await cli_json(vigil, "outputs", "payments", "--limit", "5")
        assert len(outputs) == 2 and all(o["pipeline"] == "all" for o in outputs)
        table = await cli(vigil, "outputs", "payments")
        assert table.exit_code == 0 and "10 error records from" in table.stdout

        dead_batches = await cli_json(vigil, "batches", "payments", "--status", "dead")
        assert [b["status"] for b in dead_batches] == ["dead"]
        bad_status = await cli(vigil, "batches", "payments", "--status", "lost")
        assert bad_status.exit_code == 2

        letters = await cli_json(vigil, "dead-letters", "list", "payments")
        assert [(d["kind"], d["target"]) for d in letters] == [("batch", "all")]
        listed = await cli(vigil, "dead-letters", "list", "payments")
        assert letters[0]["id"] in listed.stdout

        neither = await cli(vigil, "dead-letters", "replay", "payments")
        assert neither.exit_code == 2
        replayed = await cli(vigil, "dead-letters", "replay", "payments", letters[0]["id"])
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1 dead letter" in replayed.stdout
        await agent.wait_for(4)
        again = await cli(vigil, "dead-letters", "replay", "payments", "--all")
        assert again.exit_code == 0 and "replayed 0 dead letters" in again.stdout

        stats_table = await cli(vigil, "stats", "payments")
        assert "batches delivered" in stats_table.stdout and "outputs" in stats_table.stdout


async def test_api_down_gives_a_clear_message() -> None:
    port = closed_port()
    result = await invoke(["project", "list", "--api-url", f"http://127.0.0.1:{port}", "--token", "t"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: cannot connect to the Vigil API: is `vigil up` running at http://127.0.0.1:{port}?"
    )
    assert "Traceback" not in result.output


async def test_admin_token_from_the_data_dir_or_a_clear_error(vigil: VigilHandle, tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-data"
    env: dict[str, str | None] = {"VIGIL_DATA_DIR": str(data_dir), "VIGIL_ADMIN_TOKEN": None}

    missing = await invoke(["project", "list", "--api-url", vigil.api_url], env=env)
    assert missing.exit_code == 1 and "no admin token" in missing.stderr

    data_dir.mkdir()
    (data_dir / "admin-token").write_text("wrong-token\n")
    wrong = await invoke(["project", "list", "--api-url", vigil.api_url], env=env)
    assert wrong.exit_code == 1 and "refused the admin token" in wrong.stderr

    (data_dir / "admin-token").write_text(f"{ADMIN_TOKEN}\n")
    env["VIGIL_API_URL"] = vigil.api_url
    ok = await invoke(["project", "list", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == []
