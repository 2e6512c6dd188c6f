"""Incidents on the bus: a pipeline that takes the `incident` kind routes them to its agent as flat
records, one that takes logs never sees them; error records that open a template become
new_error_template signals, whether a pipeline takes them or not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VigilHandle, make_settings, running
from tests.doubles.agent import AgentServer
from tests.e2e.test_detection import checkout_request
from tests.logs_factory import INFO, PROTOBUF, export_bytes
from tests.otel import OtelTraces, span_exporter
from vigil.bus.topology import INCIDENT_ROUTER_CONSUMER, INCIDENTS_STREAM

FAST = {"window_s": 1.0, "allowed_lateness_s": 0.2, "idle_grace_s": 0.5}


@pytest.fixture
async def fast_windows(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    async with running(
        make_settings(tmp_path / "vigil", detect={**FAST, "new_template_warmup_s": 1.0})
    ) as handle:
        yield handle


def pipeline(endpoint: str, filter_: dict[str, Any]) -> dict[str, Any]:
    return {
        "filter": filter_,
        "batch": {"max_records": 10, "max_wait_ms": 100},
        "agent": {"endpoint": endpoint},
    }


async def incidents_of(
    vigil: VigilHandle, project_id: str, *, deadline_s: float = 20
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + deadline_s
    while not (found := (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()):
        assert asyncio.get_running_loop().time() < deadline, "no incident was opened"
        await asyncio.sleep(0.2)
    return list(found)


def noticed_kinds(agent: AgentServer, incident_id: str) -> set[str]:
    return {
        kind
        for _, batch in agent.batches()
        for record in batch
        if record["attributes"]["vigil.incident.id"] == incident_id
        for kind in record["attributes"]["vigil.incident.signal_kinds"]
    }


async def test_incidents_reach_the_pipelines_that_take_them(fast_windows: VigilHandle) -> None:
    vigil = fast_windows
    project_id, key = await vigil.project_with_key()
    async with AgentServer() as on_call, AgentServer() as log_reader:
        for name, body in {
            "incidents": pipeline(on_call.url, {"kinds": ["incident"], "min_severity": "INFO"}),
            "logs": pipeline(log_reader.url, {}),
        }.items():
            response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/{name}", json=body)
            assert response.status_code == 200, response.text
        assert (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines/logs")).json()["spec"][
            "filter"
        ]["kinds"] == ["log"]

        traces = OtelTraces("checkout", span_exporter(api_key=key, http_url=vigil.receiver_url))
        start = time.time_ns()
        for i in range(20):
            checkout_request(traces, start + i * 10_000_000, 2500, 30)
        await asyncio.to_thread(traces.close)
        response = await vigil.receiver.post(
            "/v1/logs",
            content=export_bytes("checkout", ["cart saved"], severity=INFO),
            headers={**PROTOBUF, "X-API-Key": key},
        )
        assert response.status_code == 200

        [incident] = await incidents_of(vigil, project_id)
        await on_call.wait_for(1)
        record = on_call.batches()[0][1][0]
        assert record["kind"] == "incident"
        assert record["resourceAttributes"] == {"service.name": "checkout"}
        assert record["body"] == f"Incident opened: {incident['title']}"
        assert record["attributes"]["vigil.incident.id"] == incident["id"]
        assert record["attributes"]["vigil.incident.event"] == "opened"
        assert (
            record["attributes"]["vigil.incident.url"]
            == f"/api/v1/projects/{project_id}/incidents/{incident['id']}"
        )
        # both signals may open it together, or the second joins later as an "updated" notice
        deadline = asyncio.get_running_loop().time() + 20
        while not {"slow_endpoint", "n_plus_one"} <= (kinds := noticed_kinds(on_call, incident["id"])):
            assert asyncio.get_running_loop().time() < deadline, kinds
            await asyncio.sleep(0.2)
        assert {r["attributes"]["vigil.incident.event"] for _, batch in on_call.batches() for r in batch} <= {
            "opened",
            "updated",
        }
        assert record["incident"]["id"] == incident["id"] and record["incident"]["status"] == "open"
        assert all("evidence" not in signal for signal in record["incident"]["signals"])
        assert record["traceId"] in record["incident"]["trace_ids"]

        await log_reader.wait_for(1)
        await asyncio.sleep(1.0)
        assert [r["body"] for _, batch in log_reader.batches() for r in batch] == ["cart saved"]
        assert all(r["kind"] == "incident" for _, batch in on_call.batches() for r in batch)

    # everything published was taken by the router and acknowledged
    js = vigil.runtime.bus.js  # type: ignore[union-attr]
    assert (await js.stream_info(INCIDENTS_STREAM)).state.last_seq >= 1
    assert (await js.consumer_info(INCIDENTS_STREAM, INCIDENT_ROUTER_CONSUMER)).num_pending == 0


async def test_a_kind_filter_is_validated(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    for kinds in ([], ["metric"]):
        body = pipeline("http://127.0.0.1:9/process", {"kinds": kinds})
        response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/bad", json=body)
        assert response.status_code == 422, response.text
        assert "kinds" in response.text


async def test_error_records_that_open_a_template_raise_a_signal(fast_windows: VigilHandle) -> None:
    vigil = fast_windows
    project_id, key = await vigil.project_with_key()

    async def send(body: str, severity: int | None = None) -> None:
        kwargs: dict[str, Any] = {} if severity is None else {"severity": severity}
        response = await vigil.receiver.post(
            "/v1/logs",
            content=export_bytes("payments", [body], **kwargs),
            headers={**PROTOBUF, "X-API-Key": key},
        )
        assert response.status_code == 200

    async with AgentServer() as on_call:
        # a pipeline that takes incidents only: no log record is delivered, error records are still watched
        body = pipeline(on_call.url, {"kinds": ["incident"]})
        response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/on-call", json=body)
        assert response.status_code == 200, response.text

        await send("database connection refused host=db1 port=5432")  # during the warm-up: known, not news
        await asyncio.sleep(2.0)
        assert (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json() == []
        await send("database connection refused host=db2 port=5433")  # the same template
        await send("cache warmed in 35 ms", severity=INFO)  # new, but not an error
        await send("payment gateway timeout after 30 s for order 981")  # new and an error

        [listed] = await incidents_of(vigil, project_id)
        await asyncio.sleep(1.5)  # nothing else comes of the other records
        assert len((await vigil.api.get(f"/api/v1/projects/{project_id}/incidents")).json()) == 1
        incident = (await vigil.api.get(f"/api/v1/projects/{project_id}/incidents/{listed['id']}")).json()
        [signal] = incident["signals"]
        assert signal["kind"] == "new_error_template" and signal["service"] == "payments"
        assert signal["evidence"]["template"].startswith("payment gateway timeout after")
        assert signal["evidence"]["records"][0]["body"] == "payment gateway timeout after 30 s for order 981"

        await on_call.wait_for(1)
        [(_, [record])] = on_call.batches()
        assert record["kind"] == "incident"
        assert record["attributes"]["vigil.incident.signal_kinds"] == ["new_error_template"]
