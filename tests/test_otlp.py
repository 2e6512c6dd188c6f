"""Edge decoding of OTLP log exports: decompression, content types, counting and bus-sized chunks."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from vigil.errors import InvalidPayload, PayloadTooLarge
from vigil.otlp import count_records, decode_logs, decompress, split_for_bus

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


def make_export(
    *resources: tuple[str, list[str]], padding: dict[str, int] | None = None
) -> ExportLogsServiceRequest:
    """One ResourceLogs per (service, bodies), each with one scope named after the service;
    `padding` adds a resource attribute of that many bytes to a service."""
    request = ExportLogsServiceRequest()
    for service, bodies in resources:
        rl = request.resource_logs.add()
        rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        if padding and service in padding:
            value = AnyValue(string_value="p" * padding[service])
            rl.resource.attributes.append(KeyValue(key="padding", value=value))
        sl = rl.scope_logs.add()
        sl.scope.CopyFrom(InstrumentationScope(name=f"{service}-scope", version="1.0"))
        sl.log_records.extend(LogRecord(body=AnyValue(string_value=body)) for body in bodies)
    return request


# decompress


def test_identity_returns_body_unchanged() -> None:
    assert decompress(b"abc", None, 10) == b"abc"
    assert decompress(b"abc", " Identity ", 3) == b"abc"


def test_identity_over_limit_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        decompress(b"abcd", "identity", 3)


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_gzip_and_deflate_are_inflated(encoding: str, compress: object) -> None:
    payload = b"hello otlp " * 100
    assert decompress(compress(payload), encoding.upper(), len(payload)) == payload  # type: ignore[operator]


def test_unsupported_encoding_is_rejected() -> None:
    with pytest.raises(InvalidPayload, match="unsupported Content-Encoding 'br'"):
        decompress(b"x", "br", 100)


def test_corrupted_gzip_is_invalid() -> None:
    with pytest.raises(InvalidPayload, match="not valid gzip"):
        decompress(b"\x1f\x8b" + b"garbage" * 5, "gzip", 1000)


def test_truncated_gzip_is_invalid() -> None:
    data = gzip.compress(b"some log text " * 50)
    with pytest.raises(InvalidPayload, match="truncated"):
        decompress(data[: len(data) // 2], "gzip", 10_000)


def test_gzip_bomb_over_the_limit_is_too_large() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooLarge):
        decompress(bomb, "gzip", 1_000_000)


def test_output_exactly_at_the_limit_is_accepted() -> None:
    assert decompress(gzip.compress(b"a" * 100), "gzip", 100) == b"a" * 100


def test_every_gzip_member_is_kept() -> None:
    assert decompress(gzip.compress(b"abc") + gzip.compress(b"def"), "gzip", 100) == b"abcdef"


def test_gzip_members_together_over_the_limit_are_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        decompress(gzip.compress(b"a" * 60) + gzip.compress(b"b" * 60), "gzip", 100)


def test_trailing_bytes_after_deflate_are_invalid() -> None:
    with pytest.raises(InvalidPayload, match="follow the end"):
        decompress(zlib.compress(b"abc") + b"junk", "deflate", 100)


# decode_logs


def test_protobuf_is_decoded_and_raw_kept() -> None:
    raw = make_export(("api", ["a", "b"]), ("db", ["c"])).SerializeToString()
    decoded = decode_logs(raw, "application/x-protobuf")
    assert decoded.raw is raw
    assert decoded.records == 3
    assert decoded.request.resource_logs[1].scope_logs[0].log_records[0].body.string_value == "c"


def test_missing_content_type_means_protobuf() -> None:
    raw = make_export(("api", ["a"])).SerializeToString()
    assert decode_logs(raw, None).records == 1


def test_invalid_protobuf_is_rejected() -> None:
    with pytest.raises(InvalidPayload, match="not a valid OTLP ExportLogsServiceRequest"):
        decode_logs(b"\xff\xff\xff\xff", "application/x-protobuf")


def _json_body(record: dict[str, object], *, snake: bool = False) -> bytes:
    keys = (
        ("resource_logs", "scope_logs", "log_records")
        if snake
        else ("resourceLogs", "scopeLogs", "logRecords")
    )
    return orjson.dumps({keys[0]: [{keys[1]: [{keys[2]: [record]}]}]})


def test_json_hex_ids_become_the_right_bytes() -> None:
    body = _json_body({"traceId": TRACE_HEX, "spanId": SPAN_HEX, "body": {"stringValue": "boom"}})
    decoded = decode_logs(body, "application/json; charset=utf-8")
    record = decoded.request.resource_logs[0].scope_logs[0].log_records[0]
    assert record.trace_id == bytes.fromhex(TRACE_HEX)
    assert record.span_id == bytes.fromhex(SPAN_HEX)
    assert record.body.string_value == "boom"
    assert decoded.records == 1
    assert decoded.raw == decoded.request.SerializeToString()


def test_json_snake_case_keys_are_accepted() -> None:
    body = _json_body({"trace_id": TRACE_HEX, "span_id": SPAN_HEX, "severity_text": "WARN"}, snake=True)
    record = decode_logs(body, "application/json").request.resource_logs[0].scope_logs[0].log_records[0]
    assert record.trace_id == bytes.fromhex(TRACE_HEX)
    assert record.span_id == bytes.fromhex(SPAN_HEX)
    assert record.severity_text == "WARN"


@pytest.mark.parametrize(
    ("field", "value"), [("traceId", "abcd"), ("spanId", TRACE_HEX), ("traceId", "zz" * 16)]
)
def test_json_bad_hex_id_is_rejected(field: str, value: str) -> None:
    with pytest.raises(InvalidPayload, match=f"{field} must be"):
        decode_logs(_json_body({field: value}), "application/json")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42"])
def test_json_that_is_not_an_object_is_rejected(body: bytes) -> None:
    with pytest.raises(InvalidPayload, match="must be an object"):
        decode_logs(body, "application/json")


def test_malformed_json_is_rejected() -> None:
    with pytest.raises(InvalidPayload, match="not valid JSON"):
        decode_logs(b"{", "application/json")


def test_unknown_content_type_is_rejected() -> None:
    with pytest.raises(InvalidPayload, match="unsupported Content-Type 'text/plain'") as info:
        decode_logs(b"x", "text/plain")
    assert info.value.details == {"supported": ["application/x-protobuf", "application/json"]}


def test_count_records_sums_every_scope() -> None:
    request = make_export(("a", ["1", "2"]), ("b", []), ("c", ["3"]))
    request.resource_logs[0].scope_logs.add().log_records.add()
    assert count_records(request) == 4
    assert count_records(ExportLogsServiceRequest()) == 0


# split_for_bus


def _split(request: ExportLogsServiceRequest, max_bytes: int) -> list[ExportLogsServiceRequest]:
    chunks = split_for_bus(decode_logs(request.SerializeToString(), None), max_bytes)
    assert all(len(chunk) <= max_bytes for chunk in chunks)
    return [ExportLogsServiceRequest.FromString(chunk) for chunk in chunks]


def _flatten_chunks(parts: list[ExportLogsServiceRequest]) -> list[tuple[str, str, str]]:
    """(service, scope name, body) of every record, in order."""
    return [
        (rl.resource.attributes[0].value.string_value, sl.scope.name, record.body.string_value)
        for part in parts
        for rl in part.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]


def test_export_under_the_limit_is_the_original_bytes() -> None:
    raw = make_export(("api", ["a", "b"])).SerializeToString()
    assert split_for_bus(decode_logs(raw, None), len(raw)) == [raw]


def test_big_export_is_split_keeping_every_record_in_order() -> None:
    api = [f"api-{i:03d}-" + "x" * 80 for i in range(40)]
    db = [f"db-{i:03d}-" + "y" * 80 for i in range(25)]
    request = make_export(("api", api), ("db", db))
    parts = _split(request, 1000)
    assert len(parts) > 5
    expected = [("api", "api-scope", b) for b in api] + [("db", "db-scope", b) for b in db]
    assert _flatten_chunks(parts) == expected
    for part in parts:
        for rl in part.resource_logs:
            service = rl.resource.attributes[0].value.string_value
            assert [(kv.key, kv.value.string_value) for kv in rl.resource.attributes] == [
                ("service.name", service)
            ]
            assert [(sl.scope.name, sl.scope.version) for sl in rl.scope_logs] == [
                (f"{service}-scope", "1.0")
            ]


def test_a_large_resource_joining_a_chunk_is_counted() -> None:
    request = make_export(
        ("api", ["a" * 300, "b" * 300, "c" * 300]), ("db", ["d" * 300, "e" * 300]), padding={"db": 1200}
    )
    parts = _split(request, 2200)
    assert [b[0] for _, _, b in _flatten_chunks(parts)] == ["a", "b", "c", "d", "e"]


def test_record_that_fits_only_without_its_resource_is_too_large() -> None:
    request = make_export(("api", ["a" * 300, "b" * 300]), padding={"api": 2200})
    assert len(request.resource_logs[0].scope_logs[0].log_records[0].SerializeToString()) < 2400 * 0.9
    with pytest.raises(PayloadTooLarge, match="one log record"):
        split_for_bus(decode_logs(request.SerializeToString(), None), 2400)


def test_single_record_over_the_budget_is_too_large() -> None:
    request = make_export(("api", ["small", "z" * 5000]))
    with pytest.raises(PayloadTooLarge, match="one log record"):
        split_for_bus(decode_logs(request.SerializeToString(), None), 4000)
