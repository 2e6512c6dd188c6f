"""OTLP traces in: the SDK's span exporters over HTTP and gRPC, OTLP/JSON, and the same auth,
durability and backpressure as logs. Spans land on their own stream and are not routed."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import grpc
import orjson
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.conftest import VigilHandle, make_settings, running
from tests.logs_factory import PROTOBUF, export_bytes
from tests.otel import OtelTraces, span_exporter
from vigil.bus.topology import DETECTOR_CONSUMER, RECORDS_STREAM, SPANS_STREAM
from vigil.errors import InvalidPayload, PayloadTooLarge
from vigil.otlp import TRACES, count_items, decode, split_for_bus


@pytest.fixture
async def vigil(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    """No detector runs here, so what the receivers stored stays on the spans stream to be read."""
    async with running(make_settings(tmp_path / "vigil", detect={"enabled": False})) as handle:
        yield handle


MiB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"
PARENT_HEX = "0102030405060708"
LINK_TRACE_HEX = "00112233445566778899aabbccddeeff"
LINK_SPAN_HEX = "a1a2a3a4a5a6a7a8"


def traces_export(
    *resources: tuple[str, list[str]], padding: int = 0, trace_id: bytes = b"\x01" * 16
) -> ExportTraceServiceRequest:
    """One ResourceSpans per (service, span names), each with one scope named after the service;
    `padding` adds an attribute of that many bytes to every span."""
    request = ExportTraceServiceRequest()
    for service, names in resources:
        rs = request.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        ss = rs.scope_spans.add()
        ss.scope.CopyFrom(InstrumentationScope(name=f"{service}-scope", version="1.0"))
        for i, name in enumerate(names):
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = i.to_bytes(8, "big")
            span.name = name
            span.kind = Span.SPAN_KIND_SERVER
            if padding:
                span.attributes.append(KeyValue(key="padding", value=AnyValue(string_value="p" * padding)))
    return request


def json_traces(span: dict[str, object]) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]
                    },
                    "scopeSpans": [{"scope": {"name": "manual"}, "spans": [span]}],
                }
            ]
        }
    )


def channel_export(
    channel: grpc.aio.Channel,
) -> grpc.aio.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse]:
    return channel.unary_unary(
        TRACE_EXPORT,
        request_serializer=lambda b: b,
        response_deserializer=ExportTraceServiceResponse.FromString,
    )


async def last_sequence(vigil: VigilHandle, stream: str = SPANS_STREAM) -> int:
    assert vigil.runtime.bus is not None
    info = await vigil.runtime.bus.js.stream_info(stream)
    return int(info.state.last_seq)


async def stored(vigil: VigilHandle) -> list[tuple[str, ExportTraceServiceRequest]]:
    """(subject, export) of every message on the spans stream."""
    assert vigil.runtime.bus is not None
    js = vigil.runtime.bus.js
    info = await js.stream_info(SPANS_STREAM)
    messages = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(SPANS_STREAM, seq)
        assert msg.subject is not None and msg.data is not None
        messages.append((msg.subject, ExportTraceServiceRequest.FromString(msg.data)))
    return messages


def stored_spans(
    messages: list[tuple[str, ExportTraceServiceRequest]],
) -> list[tuple[str, str, bytes, bytes, bytes]]:
    """(service, name, trace id, span id, parent span id) of every stored span."""
    return [
        (service_name(rs.resource.attributes), s.name, s.trace_id, s.span_id, s.parent_span_id)
        for _, request in messages
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]


def service_name(attributes: Iterable[KeyValue]) -> str:
    return next(kv.value.string_value for kv in attributes if kv.key == "service.name")


# Through the real OpenTelemetry SDK


async def test_sdk_span_exporters_over_http_and_grpc_land_on_the_spans_stream(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    over_http = OtelTraces("checkout", span_exporter(api_key=key, http_url=vigil.receiver_url, gzip=True))
    over_grpc = OtelTraces("payments", span_exporter(api_key=key, grpc_target=vigil.grpc_target))

    def emit() -> None:
        for traces in (over_http, over_grpc):
            for i in range(5):
                with traces.tracer.start_as_current_span(f"GET /cart/{i}") as parent:
                    link = trace.Link(parent.get_span_context())
                    with traces.tracer.start_as_current_span("db.query", links=[link]):
                        pass
            traces.close()

    await asyncio.to_thread(emit)

    messages = await stored(vigil)
    assert messages
    assert {subject for subject, _ in messages} == {f"vigil.spans.{project_id}"}
    expected = [
        (
            traces.provider.resource.attributes["service.name"],
            span.name,
            span.context.trace_id.to_bytes(16, "big"),
            span.context.span_id.to_bytes(8, "big"),
            span.parent.span_id.to_bytes(8, "big") if span.parent else b"",
        )
        for traces in (over_http, over_grpc)
        for span in traces.finished.get_finished_spans()
    ]
    assert len(expected) == 20
    assert sorted(stored_spans(messages)) == sorted(expected)
    links = [
        (s.links[0].trace_id, s.links[0].span_id, s.trace_id, s.parent_span_id)
        for _, request in messages
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
        if s.name == "db.query"
    ]
    assert len(links) == 10 and all(lt == t and ls == p for lt, ls, t, p in links)

    assert vigil.runtime.bus is not None
    js = vigil.runtime.bus.js
    assert (await js.stream_info(SPANS_STREAM)).state.messages == len(messages)
    # Kept for the detector, which has not acked them; and not routed to pipelines.
    assert (await js.consumer_info(SPANS_STREAM, DETECTOR_CONSUMER)).num_pending == len(messages)
    assert await last_sequence(vigil, RECORDS_STREAM) == 0
    metrics = (await vigil.api.get("/metrics")).text
    assert 'vigil_spans_received_total{transport="http"}' in metrics
    assert 'vigil_spans_received_total{transport="grpc"}' in metrics


async def test_sdk_exporters_with_a_wrong_key_fail_and_nothing_is_stored(vigil: VigilHandle) -> None:
    await vigil.project_with_key()
    local = OtelTraces("checkout", span_exporter(api_key="vgl_wrong", http_url=vigil.receiver_url))
    with local.tracer.start_as_current_span("GET /"):
        pass
    spans = local.finished.get_finished_spans()
    for exporter in (
        span_exporter(api_key="vgl_wrong", http_url=vigil.receiver_url),
        span_exporter(api_key="vgl_wrong", grpc_target=vigil.grpc_target),
    ):
        assert await asyncio.to_thread(exporter.export, spans) == SpanExportResult.FAILURE
        exporter.shutdown()
    local.provider.shutdown()
    assert await last_sequence(vigil) == 0


# OTLP/HTTP and gRPC directly


async def test_json_traces_hex_ids_become_the_right_bytes(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    span = {
        "traceId": TRACE_HEX,
        "spanId": SPAN_HEX,
        "parentSpanId": PARENT_HEX,
        "name": "charge card",
        "kind": 3,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000500000000",
        "status": {"code": 2, "message": "card declined"},
        "events": [{"name": "retry", "timeUnixNano": "1700000000100000000"}],
        "links": [{"traceId": LINK_TRACE_HEX, "spanId": LINK_SPAN_HEX}],
    }
    response = await vigil.receiver.post(
        "/v1/traces", content=json_traces(span), headers={**JSON, "X-API-Key": key}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert response.headers["content-type"] == "application/json"

    [(_, request)] = await stored(vigil)
    got = request.resource_spans[0].scope_spans[0].spans[0]
    assert got.trace_id == bytes.fromhex(TRACE_HEX)
    assert got.span_id == bytes.fromhex(SPAN_HEX)
    assert got.parent_span_id == bytes.fromhex(PARENT_HEX)
    assert (got.links[0].trace_id, got.links[0].span_id) == (
        bytes.fromhex(LINK_TRACE_HEX),
        bytes.fromhex(LINK_SPAN_HEX),
    )
    assert got.kind == Span.SPAN_KIND_CLIENT
    assert (got.status.code, got.status.message) == (Status.STATUS_CODE_ERROR, "card declined")
    assert got.end_time_unix_nano - got.start_time_unix_nano == 500_000_000
    assert got.events[0].name == "retry"


async def test_gzip_protobuf_is_accepted_with_an_otlp_response(vigil: VigilHandle) -> None:
    project_id, key = await vigil.project_with_key()
    raw = traces_export(("checkout", ["a", "b", "c"])).SerializeToString()
    response = await vigil.receiver.post(
        "/v1/traces",
        content=gzip.compress(raw),
        headers={**PROTOBUF, "Content-Encoding": "gzip", "X-API-Key": key},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    # The bus holds the client's bytes as they were sent, inflated.
    assert vigil.runtime.bus is not None
    msg = await vigil.runtime.bus.js.get_msg(SPANS_STREAM, 1)
    assert (msg.subject, msg.data) == (f"vigil.spans.{project_id}", raw)


async def test_malformed_traces_are_refused_and_nothing_is_stored(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    cases = [
        (b"\xff\xff\xff\x00garbage", PROTOBUF, "ExportTraceServiceRequest"),
        (b'{"resourceSpans": [', JSON, "not valid JSON"),
        (b"[]", JSON, "resourceSpans"),
        (b'{"resourceSpans": {"oops": 1}}', JSON, "resourceSpans must be a list"),
        (json_traces({"traceId": "xyz", "spanId": SPAN_HEX}), JSON, "traceId must be 32 hex"),
        (json_traces({"traceId": TRACE_HEX, "parentSpanId": TRACE_HEX}), JSON, "parentSpanId must be 16 hex"),
        (json_traces({"links": [{"traceId": TRACE_HEX, "spanId": "zz"}]}), JSON, "spanId must be 16 hex"),
        (json_traces({"startTimeUnixNano": "soon"}), JSON, "not a valid OTLP/JSON traces export"),
        (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, "not valid gzip"),
        (b"hello", {"Content-Type": "text/plain"}, "unsupported Content-Type"),
    ]
    for body, headers, message in cases:
        response = await vigil.receiver.post(
            "/v1/traces", content=body, headers={**headers, "X-API-Key": key}
        )
        assert response.status_code == 400, (body[:40], response.text)
        assert response.json()["error"] == "invalid_payload"
        assert message in response.json()["message"], response.json()
    async with grpc.aio.insecure_channel(vigil.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await channel_export(channel)(b"\xff\xff\xff\x00", metadata=(("x-api-key", key),))
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await last_sequence(vigil) == 0


async def test_missing_or_wrong_key_is_refused(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    body = traces_export(("checkout", ["GET /"])).SerializeToString()
    for headers in ({}, {"X-API-Key": "vgl_wrong"}, {"Authorization": "Bearer vgl_wrong"}):
        response = await vigil.receiver.post("/v1/traces", content=body, headers={**PROTOBUF, **headers})
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
    async with grpc.aio.insecure_channel(vigil.grpc_target) as channel:
        export = channel_export(channel)
        for metadata in ((), (("x-api-key", "vgl_wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await export(body, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert await last_sequence(vigil) == 0
        assert (
            await export(body, metadata=(("authorization", f"Bearer {key}"),)) == ExportTraceServiceResponse()
        )
    assert await last_sequence(vigil) == 1


async def test_a_retried_export_is_stored_once(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    body = traces_export(("checkout", ["same request, sent again"])).SerializeToString()
    for _ in range(3):
        response = await vigil.receiver.post(
            "/v1/traces", content=body, headers={**PROTOBUF, "X-API-Key": key}
        )
        assert response.status_code == 200
    async with grpc.aio.insecure_channel(vigil.grpc_target) as channel:
        await channel_export(channel)(body, metadata=(("x-api-key", key),))
    assert await last_sequence(vigil) == 1


async def test_an_export_bigger_than_a_bus_message_is_split(vigil: VigilHandle) -> None:
    _, key = await vigil.project_with_key()
    names = [f"span-{i:04d}" for i in range(600)]
    request = traces_export(("checkout", names), padding=5000)
    assert request.ByteSize() > 2 * MiB
    response = await vigil.receiver.post(
        "/v1/traces", content=request.SerializeToString(), headers={**PROTOBUF, "X-API-Key": key}
    )
    assert response.status_code == 200, response.text
    messages = await stored(vigil)
    assert len(messages) >= 3
    assert [name for _, name, *_ in stored_spans(messages)] == names


# Backpressure


@pytest.fixture
async def small_spans_vigil(tmp_path: Path):  # type: ignore[no-untyped-def]
    # No detector: nothing drains the spans stream, so it fills.
    settings = make_settings(tmp_path / "vigil", bus={"spans_max_bytes": MiB}, detect={"enabled": False})
    async with running(settings) as handle:
        yield handle


async def test_a_full_spans_stream_answers_429_and_resource_exhausted(small_spans_vigil: VigilHandle) -> None:
    vigil = small_spans_vigil
    _, key = await vigil.project_with_key()
    statuses: list[int] = []
    shed = None
    for i in range(50):
        body = traces_export(("checkout", [f"{i}-{n}" for n in range(100)]), padding=1000).SerializeToString()
        response = await vigil.receiver_raw.post(
            "/v1/traces", content=body, headers={**PROTOBUF, "X-API-Key": key}
        )
        statuses.append(response.status_code)
        if response.status_code != 200:
            shed = response
            break
    assert shed is not None, "the spans stream never refused anything"
    assert shed.status_code == 429, shed.text
    assert shed.json()["error"] == "overloaded"
    assert int(shed.headers["Retry-After"]) >= 1
    assert statuses.count(200) >= 1

    async with grpc.aio.insecure_channel(vigil.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            body = traces_export(("checkout", ["more"] * 100), padding=1000).SerializeToString()
            await channel_export(channel)(body, metadata=(("x-api-key", key),))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = status_pb2.Status.FromString(
        dict(refused.value.trailing_metadata() or ())["grpc-status-details-bin"]
    )
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds >= 1

    # Logs have their own stream: a spans backlog does not hold them back.
    logs = await vigil.receiver.post(
        "/v1/logs", content=export_bytes("checkout", ["still here"]), headers={**PROTOBUF, "X-API-Key": key}
    )
    assert logs.status_code == 200


# Decoding, without a server


def test_json_snake_case_keys_and_ids_are_accepted() -> None:
    body = orjson.dumps(
        {
            "resource_spans": [
                {
                    "scope_spans": [
                        {
                            "spans": [
                                {
                                    "trace_id": TRACE_HEX,
                                    "span_id": SPAN_HEX,
                                    "parent_span_id": PARENT_HEX,
                                    "links": [{"trace_id": LINK_TRACE_HEX, "span_id": LINK_SPAN_HEX}],
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    )
    decoded = decode(TRACES, body, "application/json")
    span = decoded.request.resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        bytes.fromhex(TRACE_HEX),
        bytes.fromhex(SPAN_HEX),
        bytes.fromhex(PARENT_HEX),
    )
    assert span.links[0].trace_id == bytes.fromhex(LINK_TRACE_HEX)
    assert decoded.records == 1
    assert decoded.raw == decoded.request.SerializeToString()


def test_count_items_sums_every_scope() -> None:
    request = traces_export(("a", ["1", "2"]), ("b", []), ("c", ["3"]))
    request.resource_spans[0].scope_spans.add().spans.add()
    assert count_items(TRACES, request) == 4
    assert count_items(TRACES, ExportTraceServiceRequest()) == 0


def test_split_keeps_every_span_in_order_with_its_resource_and_scope() -> None:
    api = [f"api-{i:03d}-" + "x" * 80 for i in range(40)]
    db = [f"db-{i:03d}-" + "y" * 80 for i in range(25)]
    raw = traces_export(("api", api), ("db", db)).SerializeToString()
    chunks = split_for_bus(decode(TRACES, raw, None), 1000)
    assert len(chunks) > 5 and all(len(chunk) <= 1000 for chunk in chunks)
    parts = [ExportTraceServiceRequest.FromString(chunk) for chunk in chunks]
    got = [
        (rs.resource.attributes[0].value.string_value, ss.scope.name, span.name)
        for part in parts
        for rs in part.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert got == [("api", "api-scope", n) for n in api] + [("db", "db-scope", n) for n in db]


def test_one_span_over_the_budget_is_too_large() -> None:
    raw = traces_export(("api", ["small", "z" * 5000])).SerializeToString()
    with pytest.raises(PayloadTooLarge, match="one span"):
        split_for_bus(decode(TRACES, raw, None), 4000)


def test_invalid_protobuf_names_the_traces_request() -> None:
    with pytest.raises(InvalidPayload, match="not a valid OTLP ExportTraceServiceRequest"):
        decode(TRACES, b"\xff\xff\xff\xff", "application/x-protobuf")
