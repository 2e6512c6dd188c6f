"""`vigil replay` end to end: server spans that carry their HTTP requests go through the real
receiver to the detector, which opens an incident; replaying its archived requests against a
service that still fails confirms the incident, against a fixed one does not, and the API shows
each incident's latest replay as its `confirmation`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from opentelemetry.trace import SpanKind
from typer.testing import CliRunner

from tests.conftest import ADMIN_TOKEN, VigilHandle, make_settings, running
from tests.doubles.service import Service
from tests.otel import OtelTraces, span_exporter
from vigil.cli.main import app

runner = CliRunner()
BODY = '{"amount": 12, "card": "tok_visa"}'


@pytest.fixture
async def fast_windows(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    settings = make_settings(
        tmp_path / "vigil", detect={"window_s": 1.0, "allowed_lateness_s": 0.2, "idle_grace_s": 0.5}
    )
    async with running(settings) as handle:
        yield handle


async def replay(vigil: VigilHandle, *args: str) -> Result:
    # The runtime lives on this test's event loop: the blocking CLI runs in a thread.
    return await asyncio.to_thread(
        runner.invoke,
        app,
        ["replay", *args, "--api-url", vigil.api_url, "--token", ADMIN_TOKEN],
        env={"COLUMNS": "250"},
    )


def failing_payments(traces: OtelTraces, count: int) -> None:
    """`count` payments that the service answered with a 500, with their requests in the spans."""
    start = time.time_ns()
    for i in range(count):
        span = traces.tracer.start_span(
            "POST /orders/{id}/pay",
            kind=SpanKind.SERVER,
            start_time=start + i * 3_000_000,
            attributes={
                "http.request.method": "POST",
                "http.route": "/orders/{id}/pay",
                "url.path": f"/orders/{1000 + i}/pay",
                "url.query": "currency=EUR",
                "url.scheme": "https",
                "server.address": "payments.internal",
                "server.port": 443,
                "http.response.status_code": 500,
                "http.request.header.content-type": ["application/json"],
                "http.request.header.x-tenant": ["acme"],
                "http.request.header.authorization": ["Bearer 8f9a0c1b2d3e4f5a6b7c8d9e"],
                "http.request.header.cookie": ["session=s3cret"],
                "http.request.body": BODY,
            },
        )
        span.end(end_time=start + i * 3_000_000 + 20_000_000)


async def wait_for_incident(vigil: VigilHandle, project_id: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()
        if listed:
            incident: dict[str, Any] = (
                await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{listed[0]['id']}")
            ).json()
            if any(s["kind"] == "error_rate_spike" for s in incident["signals"]):
                return incident
        assert asyncio.get_running_loop().time() < deadline, "no error-rate incident was opened"
        await asyncio.sleep(0.2)


async def test_replay_confirms_a_failure_that_reproduces_and_not_a_fixed_one(
    fast_windows: VigilHandle,
) -> None:
    vigil = fast_windows
    project_id, key = await vigil.project_with_key("payments")
    traces = OtelTraces("payments", span_exporter(api_key=key, http_url=vigil.receiver_url))
    failing_payments(traces, 30)
    await asyncio.to_thread(traces.close)

    incident = await wait_for_incident(vigil, project_id)
    incident_id = incident["id"]
    assert incident["confirmation"] is None  # never replayed
    spike = next(s for s in incident["signals"] if s["kind"] == "error_rate_spike")
    archived = [sample["request"] for sample in spike["evidence"]["samples"]]
    assert archived and all(r["path"].startswith("/orders/") for r in archived)
    assert all(r["headers"] == {"content-type": "application/json", "x-tenant": "acme"} for r in archived)
    assert all(r["body"] == BODY and r["host"] == "payments.internal" for r in archived)

    # nothing is sent on a dry run
    async with Service(status=500) as broken:
        dry = await replay(vigil, incident_id, "--target", broken.base_url, "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "dry run" in dry.stdout and f"{broken.base_url}/orders/" in dry.stdout
        assert broken.requests == []

        # (a) the service still fails: confirmed
        confirmed = await replay(vigil, incident_id, "--target", broken.base_url, "--project", "payments")
        assert confirmed.exit_code == 0, confirmed.output
        assert "confirmed" in confirmed.stdout and "failed again" in confirmed.stdout
        sent = broken.requests
    assert len(sent) == len(archived)
    assert sorted(r.path for r in sent) == sorted(r["path"] for r in archived)
    for request in sent:
        assert request.method == "POST" and request.query == "currency=EUR"
        assert request.body.decode() == BODY
        assert request.header("content-type") == "application/json" and request.header("x-tenant") == "acme"
        assert request.header("authorization") is None and request.header("cookie") is None
        assert request.header("x-vigil-replay") == incident_id

    shown = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{incident_id}")).json()
    confirmation = shown["confirmation"]
    assert confirmation["confirmed"] is True and confirmation["target"] == broken.base_url
    assert confirmation["attempted"] == confirmation["failed"] == len(archived)
    assert shown["signals"] == incident["signals"]  # the detector's incident is left as it was
    listed = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()
    assert listed[0]["confirmation"]["confirmed"] is True

    # (b) the service is fixed: not confirmed, exit 1; the latest replay is the confirmation
    async with Service(status=200) as fixed:
        not_reproduced = await replay(vigil, incident_id, "--target", fixed.base_url)
        assert not_reproduced.exit_code == 1, not_reproduced.output
        assert "not reproduced" in not_reproduced.stdout
        assert len(fixed.requests) == len(archived)
    shown = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{incident_id}")).json()
    assert shown["confirmation"]["confirmed"] is False and shown["confirmation"]["failed"] == 0
    assert shown["confirmation"]["target"] == fixed.base_url
    history = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{incident_id}/replays")).json()
    assert [h["reproduced"] for h in history] == [False, True]  # newest first
    assert {r["outcome"] for r in history[1]["results"]} == {"reproduced"}
    assert all(r["status"] == 500 and r["signal"] == "error_rate_spike" for r in history[1]["results"])

    # --json prints the stored replay
    async with Service(status=502) as again:
        as_json = await replay(vigil, incident_id, "--target", again.base_url, "--json")
    assert as_json.exit_code == 0, as_json.output
    stored = json.loads(as_json.stdout)
    assert stored["incident_id"] == incident_id and stored["reproduced"] is True


async def test_replay_refuses_bad_input(fast_windows: VigilHandle) -> None:
    vigil = fast_windows
    project_id, key = await vigil.project_with_key("payments")
    traces = OtelTraces("payments", span_exporter(api_key=key, http_url=vigil.receiver_url))
    failing_payments(traces, 30)
    await asyncio.to_thread(traces.close)
    incident_id = (await wait_for_incident(vigil, project_id))["id"]

    unknown = await replay(vigil, "inc_nope", "--target", "http://127.0.0.1:9")
    assert unknown.exit_code == 2 and "no incident 'inc_nope' in any project" in unknown.stderr
    no_project = await replay(vigil, incident_id, "--target", "http://127.0.0.1:9", "--project", "nope")
    assert no_project.exit_code == 2 and "no project with id or name 'nope'" in no_project.stderr
    bad_target = await replay(vigil, incident_id, "--target", "ftp://example.com")
    assert bad_target.exit_code == 2 and "not an http:// or https:// URL" in bad_target.output
    missing = await replay(vigil, incident_id)
    assert missing.exit_code == 2 and "--target" in missing.output

    # nothing listens at the target: nothing is learned, nothing recorded
    unreachable = await replay(vigil, incident_id, "--target", "http://127.0.0.1:9")
    assert unreachable.exit_code == 3 and "no request reached http://127.0.0.1:9" in unreachable.stderr
    shown = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{incident_id}")).json()
    assert shown["confirmation"] is None

    # the route validates what it stores
    route = f"/api/v1/projects/{project_id}/incidents/{incident_id}/replays"
    good = {"target": "http://svc:8080", "reproduced": True, "attempted": 2, "failed": 1, "results": []}
    assert (await vigil.api.post(route, json=good)).status_code == 201
    for bad in (
        {**good, "failed": 3},
        {**good, "failed": 0},  # reproduced with no failure
        {**good, "target": "svc:8080"},
        {**good, "results": [{"outcome": "maybe"}]},
        {**good, "extra": 1},
    ):
        response = await vigil.api.post(route, json=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"] == "validation_error"
    missing_incident = await vigil.api.post(
        f"/api/v1/projects/{project_id}/incidents/inc_nope/replays", json=good
    )
    assert missing_incident.status_code == 404 and missing_incident.json()["error"] == "not_found"
    unauthorized = await vigil.api.post(route, json=good, headers={"Authorization": "Bearer wrong"})
    assert unauthorized.status_code == 401
