"""`vigil demo` against a real runtime, and the traffic generator it shares with benchmarks."""

from __future__ import annotations

import asyncio
import re
import socket
from collections import Counter
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from tests.conftest import ADMIN_TOKEN, VigilHandle
from vigil.cli.main import app
from vigil.demo_traffic import SERVICES, count_records, generate_requests

runner = CliRunner()


async def demo(vigil: VigilHandle, data_dir: Path, *args: str) -> Result:
    argv = [
        *("demo", "--receiver-url", vigil.receiver_url, "--api-url", vigil.api_url, "--token", ADMIN_TOKEN),
        *args,
    ]
    # The runtime lives on this test's event loop: the blocking CLI must run elsewhere.
    return await asyncio.to_thread(
        runner.invoke, app, argv, env={"VIGIL_DATA_DIR": str(data_dir), "COLUMNS": "250"}
    )


def summary_count(output: str, label: str) -> int:
    match = re.search(rf"{label}\s*│\s*(\d+)", output)
    assert match, f"no {label!r} row in:\n{output}"
    return int(match.group(1))


async def test_demo_sends_traffic_through_the_demo_agent(vigil: VigilHandle, tmp_path: Path) -> None:
    result = await demo(vigil, tmp_path, "--duration", "2", "--rate", "100")
    assert result.exit_code == 0, result.output
    assert summary_count(result.stdout, "records sent") == 200
    received = summary_count(result.stdout, "batches the demo agent received")
    assert received > 0
    assert summary_count(result.stdout, "outputs stored") == received
    assert "vigil outputs demo" in result.stdout

    projects = (await vigil.api.get("/api/v1/projects")).json()
    [project] = [p for p in projects if p["name"] == "demo"]
    base = f"/api/v1/projects/{project['id']}"
    outputs = (await vigil.api.get(f"{base}/outputs", params={"limit": 1000})).json()
    assert len(outputs) == received
    assert {o["pipeline"] for o in outputs} == {"demo-errors"}
    assert all(o["payload"]["agent"] == "vigil-demo-agent" for o in outputs)
    records = [r for o in outputs for r in o["batch"]["records"]]
    assert all(r["severityNumber"] >= 13 for r in records)
    assert any(r["body"] == "Connection refused: database pool exhausted" for r in records)
    batches = (await vigil.api.get(f"{base}/batches", params={"limit": 1000})).json()
    assert {b["status"] for b in batches} == {"delivered"}

    # The agent is gone with the demo, so its pipeline is left disabled rather than failing.
    pipeline = (await vigil.api.get(f"{base}/pipelines/demo-errors")).json()
    assert pipeline["spec"]["enabled"] is False

    key = (tmp_path / "demo-key").read_text().strip()
    again = await demo(vigil, tmp_path, "--duration", "0.5", "--rate", "100")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "demo-key").read_text().strip() == key
    keys = (await vigil.api.get(f"{base}/api-keys")).json()
    assert [k["prefix"] for k in keys] == [key[:12]]


async def test_demo_with_an_api_key_only_sends(vigil: VigilHandle, tmp_path: Path) -> None:
    _, key = await vigil.project_with_key("shop")
    result = await demo(vigil, tmp_path, "--api-key", key, "--duration", "0.5", "--rate", "100")
    assert result.exit_code == 0, result.output
    assert "sent 50 records" in result.stdout
    names = [p["name"] for p in (await vigil.api.get("/api/v1/projects")).json()]
    assert names == ["shop"]

    refused = await demo(vigil, tmp_path, "--api-key", "vgl_wrong", "--duration", "0.5")
    assert refused.exit_code == 1
    assert "the receiver refused the API key" in refused.stderr


async def test_demo_with_the_receiver_down(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["demo", "--receiver-url", f"http://127.0.0.1:{port}", "--api-key", "k", "--duration", "0.5"]
    result = await asyncio.to_thread(runner.invoke, app, argv)
    assert result.exit_code == 1
    assert f"is `vigil up` running at http://127.0.0.1:{port}?" in result.stderr


def test_generate_requests_makes_realistic_repeatable_traffic() -> None:
    requests = list(
        generate_requests(1000, records_per_request=50, seed=3, clock=lambda: 1_700_000_000 * 10**9)
    )
    assert [count_records(r) for r in requests] == [50] * 20
    again = generate_requests(1000, records_per_request=50, seed=3, clock=lambda: 1_700_000_000 * 10**9)
    assert [r.SerializeToString() for r in again] == [r.SerializeToString() for r in requests]

    services: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    incident = 0
    for index, request in enumerate(requests):
        for resource_logs in request.resource_logs:
            resource = {a.key: a.value.string_value for a in resource_logs.resource.attributes}
            for scope in resource_logs.scope_logs:
                for record in scope.log_records:
                    services[resource["service.name"]] += 1
                    severities[record.severity_text] += 1
                    assert len(record.trace_id) == 16 and len(record.span_id) == 8
                    assert record.time_unix_nano > 0 and record.body.string_value
                    if record.body.string_value == "Connection refused: database pool exhausted":
                        assert resource["service.name"] == "payment-service"
                        assert record.severity_number == 17
                        assert 8 <= index < 12  # the burst is the middle fifth of the run
                        incident += 1
    assert set(services) == set(SERVICES)
    assert {"DEBUG", "INFO", "WARN", "ERROR"} <= set(severities)
    assert severities["INFO"] > severities["ERROR"]
    assert incident >= 10

    attributes = {
        a.key
        for r in requests
        for rl in r.resource_logs
        for s in rl.scope_logs
        for x in s.log_records
        for a in x.attributes
    }
    assert {"http.route", "http.status_code", "db.system"} <= attributes
    assert sum(count_records(r) for r in generate_requests(7, records_per_request=3)) == 7
