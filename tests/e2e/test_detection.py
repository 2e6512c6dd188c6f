"""Traces through the real receiver to the detector: a slow endpoint and an N+1 pattern under it
become one incident, shown by the API with its signals and evidence; steady traffic raises none."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind

from tests.conftest import VigilHandle, make_settings, running
from tests.otel import OtelTraces, span_exporter


@pytest.fixture
async def fast_windows(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    settings = make_settings(
        tmp_path / "vigil", detect={"window_s": 1.0, "allowed_lateness_s": 0.2, "idle_grace_s": 0.5}
    )
    async with running(settings) as handle:
        yield handle


def checkout_request(traces: OtelTraces, start_ns: int, duration_ms: float, queries: int) -> None:
    end_ns = start_ns + int(duration_ms * 1e6)
    server = traces.tracer.start_span(
        "POST /cart/checkout",
        kind=SpanKind.SERVER,
        start_time=start_ns,
        attributes={
            "http.request.method": "POST",
            "http.route": "/cart/checkout",
            "http.response.status_code": 200,
        },
    )
    context = __import__("opentelemetry.trace", fromlist=["set_span_in_context"]).set_span_in_context(server)
    for i in range(queries):
        query = traces.tracer.start_span(
            "SELECT item",
            kind=SpanKind.CLIENT,
            context=context,
            start_time=start_ns + i * 1000,
            attributes={"db.system": "postgresql", "db.statement": f"SELECT * FROM items WHERE id = {i}"},
        )
        query.end(end_time=start_ns + i * 1000 + 500_000)
    server.end(end_time=end_ns)


async def test_a_slow_endpoint_with_n_plus_one_becomes_one_incident(
    fast_windows: VigilHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vigil.detect.service")
    vigil = fast_windows
    project_id, key = await vigil.project_with_key()
    traces = OtelTraces("checkout", span_exporter(api_key=key, http_url=vigil.receiver_url))
    now = time.time_ns()
    for i in range(20):  # steady and fast: two queries per request
        checkout_request(traces, now - 3_000_000_000 + i * 10_000_000, 40, 2)
    await asyncio.to_thread(traces.provider.force_flush, 10_000)
    await asyncio.sleep(2.5)
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json() == []

    start = time.time_ns()
    for i in range(20):  # a regression: 2.5 s per request, 30 identical queries each
        checkout_request(traces, start + i * 10_000_000, 2500, 30)
    await asyncio.to_thread(traces.close)

    deadline = asyncio.get_running_loop().time() + 20
    while not (incidents := (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()):
        assert asyncio.get_running_loop().time() < deadline, "no incident was opened"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # later windows must update it, not open another
    incidents = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()
    assert len(incidents) == 1
    assert incidents[0]["status"] == "open" and incidents[0]["services"] == ["checkout"]
    incident = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{incidents[0]['id']}")).json()
    kinds = {signal["kind"] for signal in incident["signals"]}
    assert {"slow_endpoint", "n_plus_one"} <= kinds
    assert incident["timeline"][0]["event"] == "opened"
    said = [r.getMessage() for r in caplog.records if r.name == "vigil.detect.service"]
    # the wait is not silent: once per service, when its first window closes; then the incident
    assert [m for m in said if m.startswith("detector: first requests of checkout;")] == said[:1], said
    assert "incident opened" in said, said
    slow = next(s for s in incident["signals"] if s["kind"] == "slow_endpoint")
    assert slow["evidence"]["trace_ids"]
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/nope")).status_code == 404
