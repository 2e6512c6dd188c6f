"""The router's view of an export (raw attribute bytes) flattens to what `flatten` gives."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from vigil.pipeline.view import ViewExport, flatten_view, record_attributes
from vigil.records import attributes, flatten

VALUES = [
    AnyValue(string_value="GET"),
    AnyValue(string_value=""),
    AnyValue(string_value="é ünïcode ✓"),
    AnyValue(string_value="x" * 300),  # lengths past one byte
    AnyValue(int_value=0),
    AnyValue(int_value=503),
    AnyValue(int_value=-1),
    AnyValue(int_value=-(2**63)),
    AnyValue(int_value=2**63 - 1),
    AnyValue(double_value=0.0),
    AnyValue(double_value=-12.5),
    AnyValue(bool_value=True),
    AnyValue(bool_value=False),
    AnyValue(bytes_value=b"\x00\x01"),
    AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="a")])),
    AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(bool_value=True))])),
    AnyValue(),
]


def _export(record: LogRecord) -> bytes:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.add(key="service.name", value=AnyValue(string_value="svc"))
    rl.scope_logs.add().log_records.append(record)
    return request.SerializeToString()


def _both(record: LogRecord) -> tuple[LogRecord, object]:
    data = _export(record)
    full = ExportLogsServiceRequest.FromString(data).resource_logs[0].scope_logs[0].log_records[0]
    view = ViewExport.FromString(data).resource_logs[0].scope_logs[0].log_records[0]
    return full, view


@pytest.mark.parametrize("value", VALUES, ids=lambda v: v.WhichOneof("value") or "empty")
def test_each_kind_of_attribute_reads_as_the_protobuf_objects_give_it(value: AnyValue) -> None:
    record = LogRecord(attributes=[KeyValue(key="k" * 3, value=value), KeyValue(key="y" * 200, value=value)])
    full, view = _both(record)
    for _ in range(2):  # the second time from the cache
        got = record_attributes(view.attributes)
        assert got == attributes(full.attributes)
        assert [type(v) for v in got.values()] == [type(v) for v in attributes(full.attributes).values()]


def test_odd_attributes_a_key_without_value_an_empty_key_and_repeated_keys() -> None:
    record = LogRecord(
        attributes=[
            KeyValue(key="only-key"),
            KeyValue(value=AnyValue(string_value="no key")),
            KeyValue(key="a", value=AnyValue(int_value=1)),
            KeyValue(key="a", value=AnyValue(int_value=2)),
        ]
    )
    full, view = _both(record)
    assert (
        record_attributes(view.attributes)
        == attributes(full.attributes)
        == {
            "only-key": None,
            "": "no key",
            "a": 2,
        }
    )


def test_a_whole_record_flattens_alike() -> None:
    record = LogRecord(
        time_unix_nano=1_705_314_600_123_000_000,
        severity_text="error",
        body=AnyValue(
            kvlist_value=KeyValueList(values=[KeyValue(key="m", value=AnyValue(string_value="x"))])
        ),
        attributes=[KeyValue(key=f"k{i}", value=value) for i, value in enumerate(VALUES)],
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
    )
    full, view = _both(record)
    resource = {"service.name": "svc"}
    assert flatten_view(view, resource, 7) == flatten(full, resource, 7)
    assert flatten_view(
        ViewExport.FromString(_export(LogRecord())).resource_logs[0].scope_logs[0].log_records[0], resource, 7
    ) == flatten(LogRecord(), resource, 7)


def test_resource_attributes_read_alike() -> None:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    for i, value in enumerate(VALUES):
        rl.resource.attributes.add(key=f"r{i}", value=value)
    data = request.SerializeToString()
    full = ExportLogsServiceRequest.FromString(data).resource_logs[0].resource.attributes
    view = ViewExport.FromString(data).resource_logs[0].resource.attributes
    assert record_attributes(view) == attributes(full)


def test_the_attribute_cache_keeps_what_is_used_across_generations_and_stays_bounded() -> None:
    from vigil.pipeline import view

    cache = view._cache
    size = cache.size
    hot = [KeyValue(key="hot", value=AnyValue(int_value=i)).SerializeToString() for i in range(50)]
    cold = [KeyValue(key="cold", value=AnyValue(string_value=f"v{i}")).SerializeToString() for i in range(3 * size)]
    for start in range(0, len(cold), 100):
        chunk = cold[start : start + 100] + hot
        last = start + len(cold[start : start + 100]) - 1
        assert record_attributes(chunk) == {"cold": f"v{last}", "hot": 49}
        assert len(cache.current) + len(cache.previous) <= 2 * size
    # the hot attributes, used on every record, survived every turn of the generations
    assert all(raw in cache.current or raw in cache.previous for raw in hot)
    assert not any(raw in cache.current or raw in cache.previous for raw in cold[:size])


def test_attributes_read_alike_from_every_path_of_a_small_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from vigil.pipeline import view

    # three entries a generation: decoded, found in the current generation, moved back from the
    # previous one, and dropped with a turn, over and over
    monkeypatch.setattr(view, "_cache", view._AttributeCache(3))
    records = [
        LogRecord(
            attributes=[
                KeyValue(key=f"k{(i + j) % 4}", value=VALUES[(i * 3 + j) % len(VALUES)]) for j in range(i % 6)
            ]
        )
        for i in range(60)
    ]
    views = [_both(record) for record in records]
    for _ in range(3):
        for full, view_record in views:
            got = record_attributes(view_record.attributes)
            expected = attributes(full.attributes)
            assert list(got.items()) == list(expected.items())
            assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
        assert len(view._cache.current) <= 3 and len(view._cache.previous) <= 3


def test_varied_records_flatten_alike() -> None:
    bodies = [AnyValue(), AnyValue(string_value=""), AnyValue(string_value="GET /x 200"), *VALUES[4:]]
    records = []
    for i in range(120):
        record = LogRecord(
            attributes=[KeyValue(key=f"a{j}", value=VALUES[(i + j) % len(VALUES)]) for j in range(i % 5)],
            body=bodies[i % len(bodies)],
        )
        if i % 3:
            record.time_unix_nano = 1_705_314_600_000_000_000 + i * 333_333_333
        if i % 4:
            record.observed_time_unix_nano = 1_705_314_600_000_000_000 + i * 1_000
        if i % 5 == 1:
            record.severity_number = 9 + i % 12  # type: ignore[assignment]
        if i % 7 == 2:
            record.severity_text = ["warn", "ERROR", "custom"][i % 3]
        if i % 2:
            record.trace_id, record.span_id = bytes([i]) * 16, bytes([255 - i]) * 8
        records.append(record)
    resource = {"service.name": "svc"}
    for record in records:
        full, view = _both(record)
        expected = flatten(full, resource, 1_705_314_600_000_000_007)
        got = flatten_view(view, resource, 1_705_314_600_000_000_007)
        assert list(got.items()) == list(expected.items())
        assert orjson.dumps(got) == orjson.dumps(expected)
