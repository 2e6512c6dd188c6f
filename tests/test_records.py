"""OTLP log records flattened into the agent protocol's record format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from vigil.records import any_value, body_text, effective_severity, flatten, rfc3339

# 2024-01-15T10:30:00Z
T0 = 1_705_314_600 * 1_000_000_000


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def test_flatten_matches_the_agent_protocol_format_exactly() -> None:
    record = LogRecord(
        time_unix_nano=T0,
        severity_number=17,  # type: ignore[arg-type]
        severity_text="ERROR",
        body=AnyValue(string_value="Connection refused: database pool exhausted"),
        attributes=[kv("http.status_code", AnyValue(int_value=503))],
        trace_id=bytes.fromhex("5B8EFFF798038103D269B633813FC60C"),
        span_id=bytes.fromhex("eee19b7ec3c1b174"),
    )
    resource = {"service.name": "payment-service", "k8s.pod.name": "payment-abc123"}
    assert flatten(record, resource, received_unix_nano=0) == {
        "resourceAttributes": {"service.name": "payment-service", "k8s.pod.name": "payment-abc123"},
        "severityNumber": 17,
        "severityText": "ERROR",
        "body": "Connection refused: database pool exhausted",
        "attributes": {"http.status_code": 503},
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "timestamp": "2024-01-15T10:30:00Z",
    }


def test_flatten_of_an_empty_record() -> None:
    flat = flatten(LogRecord(), {}, received_unix_nano=T0 + 5)
    assert flat == {
        "resourceAttributes": {},
        "severityNumber": 0,
        "severityText": "",
        "body": "",
        "attributes": {},
        "traceId": "",
        "spanId": "",
        "timestamp": "2024-01-15T10:30:00.000000005Z",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AnyValue(string_value="text"), "text"),
        (AnyValue(int_value=-42), -42),
        (AnyValue(double_value=2.5), 2.5),
        (AnyValue(bool_value=True), True),
        (AnyValue(bool_value=False), False),
        (AnyValue(bytes_value=b"\x00\xffhi"), "AP9oaQ=="),
        (AnyValue(), None),
        (
            AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="a")])),
            [1, "a"],
        ),
    ],
)
def test_any_value_of_every_kind(value: AnyValue, expected: object) -> None:
    converted = any_value(value)
    assert converted == expected
    assert type(converted) is type(expected)


def test_nested_kvlist_becomes_nested_dicts() -> None:
    inner = KeyValueList(values=[kv("port", AnyValue(int_value=5432)), kv("tls", AnyValue(bool_value=False))])
    outer = KeyValueList(
        values=[
            kv("db", AnyValue(kvlist_value=inner)),
            kv("tags", AnyValue(array_value=ArrayValue(values=[AnyValue(kvlist_value=inner)]))),
        ]
    )
    assert any_value(AnyValue(kvlist_value=outer)) == {
        "db": {"port": 5432, "tls": False},
        "tags": [{"port": 5432, "tls": False}],
    }


def test_structured_bodies_become_compact_json() -> None:
    body = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                kv("user", AnyValue(string_value="ann")),
                kv(
                    "ids",
                    AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(int_value=2)])),
                ),
            ]
        )
    )
    assert body_text(body) == '{"user":"ann","ids":[1,2]}'
    assert body_text(AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="x")]))) == '["x"]'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AnyValue(), ""),
        (AnyValue(string_value=""), ""),
        (AnyValue(int_value=7), "7"),
        (AnyValue(double_value=1.5), "1.5"),
        (AnyValue(bool_value=True), "true"),
        (AnyValue(bool_value=False), "false"),
        (AnyValue(bytes_value=b"hi"), "aGk="),
    ],
)
def test_scalar_bodies_become_strings(value: AnyValue, expected: str) -> None:
    assert body_text(value) == expected


@pytest.mark.parametrize(
    ("nanos", "expected"),
    [
        (T0, "2024-01-15T10:30:00Z"),
        (T0 + 500_000_000, "2024-01-15T10:30:00.5Z"),
        (T0 + 123_456_789, "2024-01-15T10:30:00.123456789Z"),
        (T0 + 1_000, "2024-01-15T10:30:00.000001Z"),
        (0, "1970-01-01T00:00:00Z"),
        (5, "1970-01-01T00:00:00.000000005Z"),
        (999_999_990, "1970-01-01T00:00:00.99999999Z"),
        (1_000_000_000, "1970-01-01T00:00:01Z"),
        (1_000_000_010, "1970-01-01T00:00:01.00000001Z"),
        (T0 - 1, "2024-01-15T10:29:59.999999999Z"),
    ],
)
def test_rfc3339(nanos: int, expected: str) -> None:
    assert rfc3339(nanos) == expected


def test_timestamp_falls_back_to_observed_then_received_time() -> None:
    both = LogRecord(time_unix_nano=T0, observed_time_unix_nano=T0 + 1_000_000_000)
    observed = LogRecord(observed_time_unix_nano=T0 + 1_000_000_000)
    assert flatten(both, {}, T0 + 2_000_000_000)["timestamp"] == "2024-01-15T10:30:00Z"
    assert flatten(observed, {}, T0 + 2_000_000_000)["timestamp"] == "2024-01-15T10:30:01Z"
    assert flatten(LogRecord(), {}, T0 + 2_000_000_000)["timestamp"] == "2024-01-15T10:30:02Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("error", 17),
        ("WARN", 13),
        (" Info ", 9),
        ("warning", 13),
        ("ERROR2", 18),
        ("fatal4", 24),
        ("LOUD", 0),
    ],
)
def test_effective_severity_from_text_when_number_is_zero(text: str, expected: int) -> None:
    assert effective_severity(LogRecord(severity_text=text)) == expected


def test_effective_severity_prefers_the_number() -> None:
    assert effective_severity(LogRecord(severity_number=9, severity_text="ERROR")) == 9  # type: ignore[arg-type]
    assert effective_severity(LogRecord()) == 0


def test_severity_text_is_filled_from_the_number() -> None:
    assert flatten(LogRecord(severity_number=18), {}, T0)["severityText"] == "ERROR"  # type: ignore[arg-type]
    assert flatten(LogRecord(severity_number=24), {}, T0)["severityText"] == "FATAL"  # type: ignore[arg-type]
    kept = flatten(LogRecord(severity_number=17, severity_text="Err"), {}, T0)  # type: ignore[arg-type]
    assert (kept["severityNumber"], kept["severityText"]) == (17, "Err")
    derived = flatten(LogRecord(severity_text="warn"), {}, T0)
    assert (derived["severityNumber"], derived["severityText"]) == (13, "warn")


def test_rfc3339_of_times_in_and_out_of_order_as_datetime_formats_them() -> None:
    # the last second is remembered: going back and forth across seconds must not reuse it wrongly
    times = [T0 + 999_999_999, T0 + 1_000_000_000, T0 + 5, T0 + 86_400_000_000_123, 1_500_000_000, T0 + 7]
    for nanos in times * 2:
        seconds, fraction = divmod(nanos, 1_000_000_000)
        whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        expected = f"{whole}.{fraction:09d}".rstrip("0") + "Z" if fraction else whole + "Z"
        assert rfc3339(nanos) == expected
