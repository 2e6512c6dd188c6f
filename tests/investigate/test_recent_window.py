"""The recent records window: caps, filters, counts before samples, redaction before anything leaves."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tests.conftest import VigilHandle
from tests.logs_factory import ERROR, INFO, export, export_bytes, kv
from vigil.investigate.records import RecordQuery
from vigil.investigate.remote import RemoteRecentRecords
from vigil.investigate.window import RecentRecords
from vigil.settings import InvestigateSettings

NS = 1_000_000_000
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dGhpc2lzYXNpZ25hdHVyZWZvcnRlc3Rz"


def window(**overrides: object) -> RecentRecords:
    return RecentRecords(InvestigateSettings(**overrides))  # type: ignore[arg-type]


def keep(
    recent: RecentRecords, project: str, data: bytes, records: int | None = None, at: float | None = None
) -> None:
    recent.keep(project, data, int((at or time.time()) * NS), records)


async def test_every_filter_and_counts_before_samples() -> None:
    recent = window()
    keep(recent, "p", export_bytes("shop", ["pool exhausted after 30s"] * 3), 3)
    keep(recent, "p", export_bytes("shop", ["request served"] * 5, severity=INFO), 5)
    keep(recent, "p", export_bytes("cart", ["cart timeout talking to redis"] * 2), 2)
    keep(recent, "other", export_bytes("shop", ["another project's error"]), 1)

    everything = await recent.query("p", RecordQuery(limit=4))
    assert everything.counts.matched == 10
    assert everything.counts.by_service == {"shop": 8, "cart": 2}
    assert everything.counts.by_severity == {"INFO": 5, "ERROR": 5}
    assert len(everything.records) == 4  # counts cover all ten, samples stop at the limit
    assert everything.records[0]["body"] == "cart timeout talking to redis"  # newest first
    assert all(r["record_id"] for r in everything.records)

    errors = await recent.query("p", RecordQuery.model_validate({"severity": "error", "service": "shop"}))
    assert errors.counts.matched == 3 and {r["body"] for r in errors.records} == {"pool exhausted after 30s"}

    grep = await recent.query("p", RecordQuery(grep="timeout|exhausted"))
    assert grep.counts.by_service == {"cart": 2, "shop": 3}

    assert (await recent.query("other", RecordQuery())).counts.matched == 1
    assert (await recent.query("nobody", RecordQuery())).counts.matched == 0


async def test_time_range_and_trace_id() -> None:
    recent = window()
    request = export("api", ["old one", "new one"])
    old, new = request.resource_logs[0].scope_logs[0].log_records
    now = time.time_ns()
    old.time_unix_nano = now - 600 * NS
    new.time_unix_nano = now
    new.trace_id = bytes.fromhex("ab" * 16)
    keep(recent, "p", request.SerializeToString())
    since = datetime.now(UTC) - timedelta(minutes=5)
    recent_only = await recent.query("p", RecordQuery(since=since))
    assert [r["body"] for r in recent_only.records] == ["new one"]
    before = await recent.query("p", RecordQuery(until=since))
    assert [r["body"] for r in before.records] == ["old one"]
    traced = await recent.query("p", RecordQuery(trace_id="ab" * 16))
    assert [r["body"] for r in traced.records] == ["new one"]


async def test_records_leave_redacted_and_grep_cannot_probe_a_secret() -> None:
    recent = window()
    request = export("auth", ["login failed password=hunter2 for bob@example.com"])
    request.resource_logs[0].scope_logs[0].log_records[0].attributes.append(
        kv("authorization", f"Bearer {JWT}")
    )
    keep(recent, "p", request.SerializeToString())
    answer = await recent.query("p", RecordQuery())
    text = str(answer.records)
    assert "hunter2" not in text and "bob@example.com" not in text and JWT not in text
    assert "[REDACTED:" in answer.records[0]["body"]
    assert (await recent.query("p", RecordQuery(grep="hunter2"))).counts.matched == 0
    assert (await recent.query("p", RecordQuery(grep="REDACTED"))).counts.matched == 1


async def test_caps_by_bytes_records_age_and_projects() -> None:
    data = export_bytes("shop", ["x" * 100] * 10)
    by_bytes = window(recent_max_bytes=64 * 1024)
    for _ in range(200):
        keep(by_bytes, "p", data, 10)
    state = by_bytes.state("p")
    assert state.bytes <= 64 * 1024 and state.evicted_records > 0
    assert state.records == state.messages * 10

    by_records = window(recent_max_records=100)
    for _ in range(30):
        keep(by_records, "p", data, 10)
    assert by_records.state("p").records == 100
    assert (await by_records.query("p", RecordQuery(limit=0))).counts.matched == 100

    clock = [time.time()]
    by_age = RecentRecords(InvestigateSettings(recent_window_s=60), clock=lambda: clock[0])
    keep(by_age, "p", data, 10, at=clock[0] - 120)
    keep(by_age, "p", data, 10, at=clock[0])
    assert by_age.state("p").records == 10

    slow = window(recent_max_bytes_per_s=1024)  # bursts of 8 KiB, then 1 KiB/s
    for _ in range(20):
        keep(slow, "p", data, 10)
    kept = slow.state("p")
    assert kept.bytes <= 8 * 1024 and kept.records + kept.skipped_records == 200 and kept.skipped_records > 0

    few = window(recent_max_projects=2)
    keep(few, "a", data, 10, at=time.time() - 10)
    keep(few, "b", data, 10)
    keep(few, "c", data, 10)
    assert few.state("a").records == 0 and few.state("b").records == 10


async def test_a_message_without_a_count_is_counted_when_parsed() -> None:
    recent = window()
    keep(recent, "p", export_bytes("shop", ["short"] * 3))  # estimated from its size
    await recent.query("p", RecordQuery())
    assert recent.state("p").records == 3


def test_bad_queries_are_refused_with_the_field() -> None:
    with pytest.raises(ValidationError, match="grep"):
        RecordQuery(grep="(a)\\1")
    with pytest.raises(ValidationError, match="severity"):
        RecordQuery.model_validate({"severity": "loud"})
    with pytest.raises(ValidationError, match="trace_id"):
        RecordQuery(trace_id="xyz")
    assert RecordQuery.model_validate({"severity": "warn"}).severity == 13
    assert ERROR == 17


async def test_windows_of_other_processes_are_asked_over_the_bus(vigil: VigilHandle) -> None:
    bus = vigil.runtime.bus
    assert bus is not None
    first, second = (
        RecentRecords(InvestigateSettings(), bus=bus),
        RecentRecords(InvestigateSettings(), bus=bus),
    )
    await first.start()
    await second.start()
    try:
        keep(first, "p", export_bytes("shop", ["pool exhausted"] * 3), 3, at=time.time() - 5)
        keep(second, "p", export_bytes("cart", ["cart timeout"] * 2), 2)
        remote = RemoteRecentRecords(bus, InvestigateSettings())
        answer = await remote.query("p", RecordQuery(limit=4))
        assert answer.counts.matched == 5 and answer.counts.by_service == {"shop": 3, "cart": 2}
        assert answer.window.records == 5 and len(answer.records) == 4
        assert answer.records[0]["body"] == "cart timeout"  # the newest of both
        grep = await remote.query("p", RecordQuery(grep="pool"))
        assert grep.counts.by_service == {"shop": 3}
    finally:
        await first.shutdown()
        await second.shutdown()
