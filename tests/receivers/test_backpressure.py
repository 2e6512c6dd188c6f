"""When the bus is over its limit the receivers shed load with OTLP's retryable answers."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.conftest import VigilHandle, make_settings, running
from tests.doubles.agent import AgentServer
from tests.logs_factory import PROTOBUF, export_bytes

MiB = 1024 * 1024


@pytest.fixture
async def small_vigil(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path / "vigil",
        bus={"records_max_bytes": MiB, "batches_max_bytes": MiB, "router_max_pending": 4},
    )
    async with running(settings) as handle:
        yield handle


async def test_full_bus_answers_429_with_retry_after_and_grpc_resource_exhausted(
    small_vigil: VigilHandle,
) -> None:
    vigil = small_vigil
    project_id, key = await vigil.project_with_key()
    with AgentServer() as probe:
        down = probe.url
    spec = {"filter": {}, "batch": {"max_records": 100, "max_wait_ms": 50}, "agent": {"endpoint": down}}
    assert (await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/all", json=spec)).status_code == 200

    statuses: list[int] = []
    shed = None
    for i in range(200):
        body = export_bytes("svc", [f"{i}-{n} " + "x" * 200 for n in range(400)])
        response = await vigil.receiver_raw.post(
            "/v1/logs", content=body, headers={**PROTOBUF, "X-API-Key": key}
        )
        statuses.append(response.status_code)
        if response.status_code != 200:
            shed = response
            break
    assert shed is not None, "the bus never refused anything"
    assert shed.status_code == 429, shed.text
    assert shed.json()["error"] == "overloaded"
    assert int(shed.headers["Retry-After"]) >= 1
    assert statuses.count(200) >= 1

    async with grpc.aio.insecure_channel(vigil.grpc_target) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            request_serializer=lambda b: b,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await export(export_bytes("svc", ["y" * 300] * 400), metadata=(("x-api-key", key),))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(refused.value.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds >= 1

    # Still serving: the API answers and a key check still works.
    assert (await vigil.api.get("/api/v1/projects")).status_code == 200
