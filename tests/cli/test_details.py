"""`vigil batches PROJECT REQUEST_ID`, `vigil evidence` and `vigil llm-usage` against a real runtime:
what the README's curl calls read, from the CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from tests.agents.test_llm_engine import answer
from tests.cli.test_admin import cli, cli_json, send_logs
from tests.conftest import VigilHandle, make_settings, running
from tests.doubles.agent import AgentServer
from tests.doubles.openai_server import OpenAIServer
from tests.otel import OtelTraces, span_exporter

FAST = {"window_s": 1.0, "allowed_lateness_s": 0.2, "idle_grace_s": 0.5}


async def eventually(probe: Any, what: str, timeout_s: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (found := await probe()):
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.2)
    return found


async def test_one_batch_is_shown_with_its_records(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key("payments")
    async with AgentServer(vigil_endpoint=vigil.receiver_url, api_key=key) as agent:
        set_pipeline = await cli(vigil, "pipeline", "set", "payments", "all", "--agent", agent.url)
        assert set_pipeline.exit_code == 0, set_pipeline.output
        assert await send_logs(vigil, key, records=3) == 200
        await agent.wait_for(1)

    async def delivered() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await cli_json(vigil, "batches", "payments", "--status", "delivered")
        return rows

    [listed] = await eventually(delivered, "the batch was not delivered")
    request_id = listed["request_id"]
    shown = await cli_json(vigil, "batches", "payments", request_id)
    assert shown["request_id"] == request_id and len(shown["records"]) == 3
    table = await cli(vigil, "batches", "payments", request_id)
    assert table.exit_code == 0, table.output
    assert f"Batch {request_id}" in table.stdout and "pipeline all" in table.stdout
    assert "status delivered, 3 records" in table.stdout
    for record in shown["records"]:
        assert record["body"][:40] in table.stdout
        assert record["resourceAttributes"]["service.name"] in table.stdout
    missing = await cli(vigil, "batches", "payments", "no-such-batch")
    assert missing.exit_code == 1 and "no-such-batch" in missing.output


@pytest.fixture
async def fast_windows(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    async with running(make_settings(tmp_path / "vigil", detect=FAST)) as handle:
        yield handle


async def test_the_evidence_of_an_incident_signal(fast_windows: VigilHandle) -> None:
    vigil = fast_windows
    _, key = await vigil.project_with_key("shop")
    traces = OtelTraces("checkout", span_exporter(api_key=key, http_url=vigil.receiver_url))
    start = time.time_ns() // 1_000_000_000 * 1_000_000_000  # all in one (1 s) window
    for i in range(20):  # half of them fail: an error-rate spike from the first window
        span = traces.tracer.start_span(
            "POST /pay",
            kind=SpanKind.SERVER,
            start_time=start + i * 1_000_000,
            attributes={
                "http.request.method": "POST",
                "http.route": "/pay",
                "http.response.status_code": 500 if i % 2 else 200,
            },
        )
        span.end(end_time=start + i * 1_000_000 + 20_000_000)
    await asyncio.to_thread(traces.close)

    async def incidents() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await cli_json(vigil, "incidents", "list", "shop")
        return rows

    [incident] = await eventually(incidents, "no incident was opened")
    detail = await cli_json(vigil, "incidents", "show", "shop", incident["id"])
    spike = next(s for s in detail["signals"] if s["kind"] == "error_rate_spike")
    shown = await cli(vigil, "incidents", "show", "shop", incident["id"])
    assert f"(evidence: {spike['fingerprint']})" in shown.stdout, shown.output

    async def archived() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await cli_json(vigil, "evidence", "shop", spike["fingerprint"])
        return rows

    documents = await eventually(archived, "no evidence was archived")
    assert documents[0]["signal"]["kind"] == "error_rate_spike"
    assert documents[0]["evidence"]["stats"]["errors"] == 10
    table = await cli(vigil, "evidence", "shop", spike["fingerprint"])
    assert table.exit_code == 0, table.output
    assert documents[0]["signal"]["title"] in table.stdout
    assert "error_rate_spike" in table.stdout and "10/20" in table.stdout
    assert documents[0]["evidence"]["trace_ids"][0] in table.stdout
    none = await cli(vigil, "evidence", "shop", "0" * 16)
    assert none.exit_code == 0 and "No evidence archived" in none.stdout
    bad = await cli(vigil, "evidence", "shop", "_not_a_fingerprint")
    assert bad.exit_code == 1 and "fingerprint" in bad.output


async def test_llm_usage_without_a_model(vigil: VigilHandle) -> None:
    await vigil.project_with_key("shop")
    assert await cli_json(vigil, "llm-usage", "shop") == {"configured": False}
    said = await cli(vigil, "llm-usage", "shop")
    assert said.exit_code == 0 and "No LLM is configured" in said.stdout


async def test_llm_usage_per_day_and_incident(tmp_path: Path) -> None:
    async with OpenAIServer(api_key="sk-test") as model:
        model.default_reply = None
        llm = {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": model.api_base,
            "api_key": "sk-test",
            "tokens_per_day": 100_000,
            "tokens_per_incident": 20_000,
        }
        async with running(make_settings(tmp_path / "vigil", llm=llm)) as vigil:
            project_id, key = await vigil.project_with_key("shop")
            before = await cli(vigil, "llm-usage", "shop")
            assert "today 0 of 100,000 tokens, 100,000 left" in before.stdout, before.output
            assert "No incident has used the LLM today" in before.stdout
            spec = {
                "filter": {"min_severity": "ERROR"},
                "batch": {"max_records": 10, "max_wait_ms": 100},
                "agent": {"endpoint": "builtin:error-summary", "engine": "llm"},
            }
            saved = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/llm", json=spec)
            assert saved.status_code == 200, saved.text
            model.reply_json(answer(citations=[]))
            assert await send_logs(vigil, key, records=50) == 200

            async def spent() -> dict[str, Any] | None:
                usage: dict[str, Any] = await cli_json(vigil, "llm-usage", "shop")
                return usage if usage["tokens_today"] else None

            usage = await eventually(spent, "the LLM was never called")
            assert usage["configured"] is True and usage["tokens_today"] == 150
            [(incident, tokens)] = usage["incidents"].items()
            table = await cli(vigil, "llm-usage", "shop")
            assert "today 150 of 100,000 tokens, 99,850 left" in table.stdout, table.output
            assert "limit 20,000 tokens each" in table.stdout
            assert incident in table.stdout and str(tokens["remaining"]) in table.stdout.replace(",", "")
