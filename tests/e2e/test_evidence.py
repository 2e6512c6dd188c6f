"""Evidence end to end: spans of a slow endpoint through the real receiver and detector, the
evidence of its signals archived in an S3-compatible server (moto's server mode), and read back
through the incident API and the evidence API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from tests.conftest import VigilHandle, make_settings, running
from tests.doubles.s3_server import S3Server
from tests.otel import OtelTraces, span_exporter

ROUTE = "/cart/checkout"


@pytest.fixture
async def vigil_with_s3(
    tmp_path: Path, s3_server: S3Server, aws_credentials: None
) -> AsyncIterator[tuple[VigilHandle, str]]:
    bucket = s3_server.new_bucket("evidence")
    settings = make_settings(
        tmp_path / "vigil",
        detect={
            "window_s": 1.0,
            "allowed_lateness_s": 0.2,
            "idle_grace_s": 0.5,
            "evidence_url": f"s3://{bucket}/vigil",
            "evidence_s3_endpoint_url": s3_server.endpoint_url,
            "evidence_s3_region": "us-east-1",
        },
    )
    async with running(settings) as handle:
        yield handle, bucket


def checkout(traces: OtelTraces, start_ns: int, duration_ms: float, status: int) -> None:
    span = traces.tracer.start_span(
        f"POST {ROUTE}",
        kind=SpanKind.SERVER,
        start_time=start_ns,
        attributes={"http.request.method": "POST", "http.route": ROUTE, "http.response.status_code": status},
    )
    span.end(end_time=start_ns + int(duration_ms * 1e6))


async def eventually(probe: Any, what: str, timeout_s: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (found := await probe()):
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.2)
    return found


async def test_evidence_of_a_slow_endpoint_is_archived_in_s3_and_served_with_the_incident(
    vigil_with_s3: tuple[VigilHandle, str], s3_server: S3Server
) -> None:
    vigil, bucket = vigil_with_s3
    project_id, key = await vigil.project_with_key()
    traces = OtelTraces("checkout", span_exporter(api_key=key, http_url=vigil.receiver_url))
    start = time.time_ns()
    for i in range(20):  # 2.5 s and more per request: a slow endpoint, no errors
        checkout(traces, start + i * 10_000_000, 2500 + 10 * i, 200)
    await asyncio.to_thread(traces.close)
    spans = {
        (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"): s
        for s in traces.finished.get_finished_spans()
    }
    assert len(spans) == 20

    async def incidents() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()
        return found

    [summary] = await eventually(incidents, "no incident was opened")
    path = f"/api/v1/projects/{project_id}/incidents/{summary['id']}"

    async def incident_with_evidence() -> dict[str, Any] | None:
        body: dict[str, Any] = (await vigil.api.get(path)).json()
        slow = [s for s in body["signals"] if s["kind"] == "slow_endpoint"]
        return body if slow and body["evidence"].get(slow[0]["fingerprint"]) else None

    await eventually(incident_with_evidence, "the evidence was not archived")
    await asyncio.sleep(2.0)  # every window of the traffic closed and written: a settled archive
    incident = (await vigil.api.get(path)).json()
    slow = next(s for s in incident["signals"] if s["kind"] == "slow_endpoint")
    fp = slow["fingerprint"]
    assert set(incident["evidence"]) <= {s["fingerprint"] for s in incident["signals"]}
    doc = incident["evidence"][fp][0]
    signal = doc["signal"]
    assert signal["kind"] == "slow_endpoint" and signal["fingerprint"] == fp
    assert (signal["project"], signal["service"], signal["endpoint"]) == (
        project_id,
        "checkout",
        f"POST {ROUTE}",
    )
    assert signal["value"] >= 2500 and signal["value"] >= signal["threshold"] and signal["title"]
    stats = doc["evidence"]["stats"]
    assert stats["count"] >= 1 and stats["errors"] == 0 and stats["p95_ms"] >= 2500
    samples = doc["evidence"]["samples"]
    assert samples and all(s["duration_ms"] >= 2500 for s in samples)
    for sample in samples:  # the slowest requests are the very spans the service sent
        sent = spans[(sample["trace_id"], sample["span_id"])]
        assert sample["route"] == ROUTE and sent.name == f"POST {ROUTE}"
    assert doc["evidence"]["trace_ids"][0] == samples[0]["trace_id"]

    # the same documents, from the bucket and from the evidence API
    objects = s3_server.keys(bucket, f"vigil/{project_id}/{fp}/")
    assert objects and f"vigil/{doc['key']}" in objects
    assert all(name.endswith(".json.gz") for name in objects)
    listed = await vigil.api.get(f"/api/v1/projects/{project_id}/evidence/{fp}", params={"limit": 50})
    assert listed.status_code == 200
    assert [d["key"] for d in listed.json()] == [
        o.removeprefix("vigil/") for o in sorted(objects, reverse=True)
    ]
    assert listed.json()[0] == doc

    none = await vigil.api.get(f"/api/v1/projects/{project_id}/evidence/0000000000000000")
    assert none.status_code == 200 and none.json() == []
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/evidence/bad!fp")).status_code == 422
    assert (await vigil.api.get("/api/v1/projects/nope/evidence/0000000000000000")).status_code == 404
    without = (await vigil.api.get(path, params={"evidence_limit": 0})).json()
    assert without["evidence"] == {} and without["signals"]
