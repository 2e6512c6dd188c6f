"""Bad input gets a clear error, nothing of it reaches the bus, and the process keeps serving."""

from __future__ import annotations

import gzip

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from tests.conftest import VigilHandle
from tests.logs_factory import PROTOBUF, export_bytes
from vigil.bus.topology import RECORDS_STREAM


async def last_sequence(vigil: VigilHandle) -> int:
    assert vigil.runtime.bus is not None
    info = await vigil.runtime.bus.js.stream_info(RECORDS_STREAM)
    return int(info.state.last_seq)


async def test_malformed_and_oversized_bodies_are_refused(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    before = await last_sequence(vigil)
    headers = {"X-API-Key": key}
    cases = [
        (b"\xff\xff\xff\x00garbage", PROTOBUF, 400, "invalid_payload"),
        (b'{"resourceLogs": [', {"Content-Type": "application/json"}, 400, "invalid_payload"),
        (b'{"resourceLogs": {"oops": 1}}', {"Content-Type": "application/json"}, 400, "invalid_payload"),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}',
            {"Content-Type": "application/json"},
            400,
            "invalid_payload",
        ),
        (b"hello", {"Content-Type": "text/plain"}, 400, "invalid_payload"),
        (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "invalid_payload"),
        (b"x" * (17 * 1024 * 1024), PROTOBUF, 413, "payload_too_large"),
        (
            gzip.compress(b"\x00" * (17 * 1024 * 1024)),
            {**PROTOBUF, "Content-Encoding": "gzip"},
            413,
            "payload_too_large",
        ),
    ]
    for body, extra, status, code in cases:
        response = await vigil.receiver.post("/v1/logs", content=body, headers={**headers, **extra})
        assert response.status_code == status, (body[:40], response.text)
        assert response.json()["error"] == code
        assert response.json()["message"]
    assert await last_sequence(vigil) == before

    ok = await vigil.receiver.post(
        "/v1/logs", content=export_bytes("svc", ["fine"]), headers={**headers, **PROTOBUF}
    )
    assert ok.status_code == 200
    assert ExportLogsServiceResponse.FromString(ok.content) == ExportLogsServiceResponse()
    assert await last_sequence(vigil) == before + 1


async def test_keys_missing_wrong_and_revoked(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    body = export_bytes("svc", ["hello"])
    for headers in (
        {},
        {"X-API-Key": "vgl_wrong"},
        {"Authorization": "Bearer vgl_wrong"},
        {"Authorization": "Basic abc"},
    ):
        response = await vigil.receiver.post("/v1/logs", content=body, headers={**PROTOBUF, **headers})
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
    bearer = await vigil.receiver.post(
        "/v1/logs", content=body, headers={**PROTOBUF, "Authorization": f"Bearer {key}"}
    )
    assert bearer.status_code == 200

    keys = (await vigil.api.get(f"/api/v1/projects/{project_id}/api-keys")).json()
    assert "key" not in keys[0] and keys[0]["prefix"] == key[:12]
    revoked = await vigil.api.delete(f"/api/v1/projects/{project_id}/api-keys/{keys[0]['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    after = await vigil.receiver.post("/v1/logs", content=body, headers={**PROTOBUF, "X-API-Key": key})
    assert after.status_code == 401


async def test_grpc_errors(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    before = await last_sequence(vigil)
    async with grpc.aio.insecure_channel(vigil.grpc_target) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            request_serializer=lambda b: b,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await export(export_bytes("svc", ["x"]))
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as wrong:
            await export(export_bytes("svc", ["x"]), metadata=(("x-api-key", "nope"),))
        assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await export(b"\xff\xff\xff\x00", metadata=(("x-api-key", key),))
        assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await last_sequence(vigil) == before
        answer = await export(export_bytes("svc", ["x"]), metadata=(("authorization", f"Bearer {key}"),))
        assert answer == ExportLogsServiceResponse()
    assert await last_sequence(vigil) == before + 1


async def test_a_retried_export_is_stored_once(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    before = await last_sequence(vigil)
    body = export_bytes("svc", ["same request, sent twice"])
    for _ in range(3):
        response = await vigil.receiver.post("/v1/logs", content=body, headers={**PROTOBUF, "X-API-Key": key})
        assert response.status_code == 200
    assert await last_sequence(vigil) == before + 1


async def test_json_export_is_accepted(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {"stringValue": "boom"},
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = await vigil.receiver.post("/v1/logs", json=body, headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.json() == {}
    empty = await vigil.receiver.post(
        "/v1/logs",
        content=ExportLogsServiceRequest().SerializeToString(),
        headers={**PROTOBUF, "X-API-Key": key},
    )
    assert empty.status_code == 200


async def test_agent_output_checks_key_request_id_and_body(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key("one")
    _, other_key = await vigil.project_with_key("two")
    assert vigil.runtime.store is not None
    from vigil.store.models import Batch
    from vigil.store.repo import utcnow

    project_one = (await vigil.api.get("/api/v1/projects")).json()[0]["id"]
    now = utcnow()
    await vigil.runtime.store.add_batches(
        [
            Batch(
                request_id="req-1",
                project_id=project_one,
                pipeline="errors",
                record_count=1,
                records=[{}],
                status="delivered",
                attempts=1,
                last_error=None,
                created_at=now,
                updated_at=now,
            )
        ]
    )
    good = {"request_id": "req-1", "payload": {"summary": "ok"}}
    cases = [
        ({}, good, 401, "unauthorized"),
        ({"X-API-Key": "wrong"}, good, 401, "unauthorized"),
        ({"X-API-Key": other_key}, good, 403, "forbidden"),
        ({"X-API-Key": key}, {"request_id": "nope", "payload": {}}, 404, "not_found"),
        ({"X-API-Key": key}, {"request_id": "req-1"}, 422, "validation_error"),
        ({"X-API-Key": key}, {"request_id": "req-1", "payload": "text"}, 422, "validation_error"),
    ]
    for headers, body, status, code in cases:
        response = await vigil.receiver.post("/internal/agent-output", json=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["error"] == code
    raw = await vigil.receiver.post("/internal/agent-output", content=b"{", headers={"X-API-Key": key})
    assert raw.status_code == 400
    first = await vigil.receiver.post(
        "/internal/agent-output", json=good, headers={"X-API-Key": key, "Idempotency-Key": "k1"}
    )
    second = await vigil.receiver.post(
        "/internal/agent-output", json=good, headers={"X-API-Key": key, "Idempotency-Key": "k1"}
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
