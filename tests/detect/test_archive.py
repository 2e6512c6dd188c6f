"""The evidence archive on disk and on a real S3-compatible server (moto's server mode): documents
written and read back by fingerprint, idempotent keys, the retention sweep, URLs checked."""

from __future__ import annotations

import gzip
import math
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from tests.doubles.s3_server import S3Server
from vigil.detect.archive import (
    ArchiveConfig,
    DiskArchive,
    EvidenceArchive,
    S3Archive,
    archive_from_settings,
    key_of,
    open_archive,
)
from vigil.detect.facts import RequestFact
from vigil.detect.recorder import EvidenceRecorder
from vigil.detect.signals import Signal, SignalKind, evaluate
from vigil.detect.windows import WindowConfig, Windower
from vigil.settings import Settings

PROJECT = "proj-1"
HOUR = 3600.0
KEY = re.compile(r"proj-1/[0-9a-f]{16}/(\d{12})-[0-9a-f]{12}\.json\.gz")


def window_signals(start: float, *, project: str = PROJECT) -> dict[SignalKind, Signal]:
    """A failing, slow checkout window through the real windower and signal rules."""
    windower = Windower(WindowConfig(size_s=60.0))
    for i in range(10):
        failed = i < 6
        windower.add(
            RequestFact(
                project=project,
                service="checkout",
                kind="server",
                method="POST",
                route="/cart/checkout",
                status=500 if failed else 200,
                is_error=failed,
                duration_ms=1500.0 + 100 * i,
                start_s=start + i,
                trace_id=f"{i + 1:032x}",
                span_id=f"{i + 1:016x}",
            )
        )
    signals = [s for window in windower.flush() for s in evaluate(window)]
    by_kind = {s.kind: s for s in signals}
    assert set(by_kind) == {SignalKind.ERROR_RATE_SPIKE, SignalKind.SLOW_ENDPOINT}
    return by_kind


def minute(t: float) -> float:
    return math.floor(t / 60) * 60


@pytest.fixture(params=["disk", "s3"])
async def archive(
    request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server, aws_credentials: None
) -> AsyncIterator[EvidenceArchive]:
    if request.param == "disk":
        built = open_archive(str(tmp_path / "evidence"), ArchiveConfig(retention_s=HOUR))
    else:
        bucket = s3_server.new_bucket()
        config = ArchiveConfig(
            retention_s=HOUR, s3_endpoint_url=s3_server.endpoint_url, s3_region="us-east-1"
        )
        built = open_archive(f"s3://{bucket}/evidence/v1", config)
    await built.start()
    await built.start()  # twice is fine
    yield built
    await built.shutdown()
    await built.shutdown()


async def test_documents_round_trip_by_fingerprint(archive: EvidenceArchive) -> None:
    start = minute(time.time()) - 120
    signals = window_signals(start)
    slow, errors = signals[SignalKind.SLOW_ENDPOINT], signals[SignalKind.ERROR_RATE_SPIKE]
    key = await archive.put(slow)
    await archive.put(errors)
    found = KEY.fullmatch(key)
    assert found and found.group(1) == f"{int(start):012d}" and slow.fingerprint in key

    [doc] = await archive.get(PROJECT, slow.fingerprint)
    assert doc["key"] == key
    assert doc["signal"] == {
        "kind": "slow_endpoint",
        "severity": slow.severity.value,
        "project": PROJECT,
        "service": "checkout",
        "endpoint": "POST /cart/checkout",
        "statement": None,
        "window_start": start,
        "window_end": start + 60,
        "fingerprint": slow.fingerprint,
        "title": slow.title,
        "value": slow.value,
        "threshold": slow.threshold,
    }
    evidence = doc["evidence"]
    assert evidence["stats"]["count"] == 10 and evidence["stats"]["errors"] == 6
    assert evidence["stats"]["p95_ms"] > 1000
    # the slowest requests, with their trace and span ids
    slowest = evidence["samples"]
    assert [s["duration_ms"] for s in slowest] == [2400.0, 2300.0, 2200.0]
    assert slowest[0]["trace_id"] == f"{10:032x}" and slowest[0]["span_id"] == f"{10:016x}"
    assert evidence["trace_ids"][0] == f"{10:032x}"

    [failing] = await archive.get(PROJECT, errors.fingerprint)
    assert failing["signal"]["kind"] == "error_rate_spike"
    assert {s["status"] for s in failing["evidence"]["samples"]} == {500}
    assert all(s["span_id"] for s in failing["evidence"]["samples"])
    assert failing["evidence"]["stats"]["error_samples"] == []  # kept once, in samples

    assert await archive.get(PROJECT, "0123456789abcdef") == []
    assert await archive.get("other-project", slow.fingerprint) == []


async def test_the_same_occurrence_is_one_document_and_newer_windows_come_first(
    archive: EvidenceArchive,
) -> None:
    now = minute(time.time())
    older = window_signals(now - 180)[SignalKind.SLOW_ENDPOINT]
    newer = window_signals(now - 60)[SignalKind.SLOW_ENDPOINT]
    assert older.fingerprint == newer.fingerprint
    first = await archive.put(older)
    assert await archive.put(older) == first == key_of(older)
    assert await archive.put(older.model_copy()) == first
    await archive.put(newer)

    docs = await archive.get(PROJECT, older.fingerprint)
    assert [d["signal"]["window_start"] for d in docs] == [now - 60, now - 180]
    [latest] = await archive.get(PROJECT, older.fingerprint, limit=1)
    assert latest["signal"]["window_start"] == now - 60


async def test_the_sweep_deletes_what_is_older_than_the_retention(archive: EvidenceArchive) -> None:
    now = minute(time.time())
    old = window_signals(now - 3 * HOUR)
    fresh = window_signals(now - 120)
    for signal in [*old.values(), *fresh.values()]:
        await archive.put(signal)

    assert await archive.sweep(now) == 2
    for kind in old:
        docs = await archive.get(PROJECT, old[kind].fingerprint)
        assert [d["signal"]["window_start"] for d in docs] == [now - 120]
    assert await archive.sweep(now) == 0
    # and once the fresh ones age past the retention, they go too
    assert await archive.sweep(now + 2 * HOUR) == 2
    assert await archive.get(PROJECT, fresh[SignalKind.SLOW_ENDPOINT].fingerprint) == []


async def test_disk_layout_is_gzip_json_written_atomically(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    archive = DiskArchive(root, retention_s=HOUR)
    signal = window_signals(minute(time.time()))[SignalKind.SLOW_ENDPOINT]
    key = await archive.put(signal)
    path = root / key
    assert path.parent == root / PROJECT / signal.fingerprint
    document = orjson.loads(gzip.decompress(path.read_bytes()))
    assert document["signal"]["title"] == signal.title
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left

    leftover = path.parent / f".{path.name}.dead.tmp"  # as a crash mid-write leaves it
    leftover.write_bytes(b"partial")
    os.utime(leftover, (time.time() - 2 * HOUR, time.time() - 2 * HOUR))
    assert [d["key"] for d in await archive.get(PROJECT, signal.fingerprint)] == [key]
    await archive.sweep(time.time())
    assert not leftover.exists() and path.exists()


async def test_s3_objects_are_laid_out_under_the_prefix(
    s3_server: S3Server, aws_credentials: None, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        detect={
            "evidence_url": f"s3://{bucket}/team/evidence/",
            "evidence_s3_endpoint_url": s3_server.endpoint_url,
            "evidence_retention_s": 60.0,
        },
    )
    archive = archive_from_settings(settings)
    assert isinstance(archive, S3Archive) and archive.retention_s == 60.0
    await archive.start()
    try:
        signal = window_signals(minute(time.time()))[SignalKind.SLOW_ENDPOINT]
        key = await archive.put(signal)
        assert s3_server.keys(bucket) == [f"team/evidence/{key}"]
        body = s3_server.client().get_object(Bucket=bucket, Key=f"team/evidence/{key}")["Body"].read()
        assert orjson.loads(gzip.decompress(body))["signal"]["fingerprint"] == signal.fingerprint
    finally:
        await archive.shutdown()


def test_urls_choose_the_backend(tmp_path: Path) -> None:
    config = ArchiveConfig(data_dir=tmp_path)
    default = open_archive(None, config)
    assert isinstance(default, DiskArchive) and default.root == tmp_path / "evidence"
    plain = open_archive("/var/lib/vigil/evidence", config)
    assert isinstance(plain, DiskArchive) and plain.root == Path("/var/lib/vigil/evidence")
    file_url = open_archive("file:///srv/evidence", config)
    assert isinstance(file_url, DiskArchive) and file_url.root == Path("/srv/evidence")
    s3 = open_archive("s3://my-bucket/a/b/", ArchiveConfig(s3_endpoint_url="http://minio:9000"))
    assert isinstance(s3, S3Archive)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == ("my-bucket", "a/b", "http://minio:9000")
    assert isinstance(open_archive("s3://my-bucket"), S3Archive)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("gs://bucket/evidence", "unsupported evidence URL scheme 'gs'"),
        ("s3://", "is not an S3 bucket name"),
        ("s3:///prefix-only", "is not an S3 bucket name"),
        ("s3://Bad_Bucket/x", "is not an S3 bucket name"),
        ("s3://bucket/x?region=eu-west-1", "takes no query"),
        ("file://otherhost/evidence", "local absolute path"),
    ],
)
def test_bad_urls_are_refused_by_the_settings(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        open_archive(url)
    with pytest.raises(ValidationError, match=re.escape(why)) as raised:
        Settings(_env_file=None, detect={"evidence_url": url})  # type: ignore[call-arg]
    assert "detect.evidence_url" in str(raised.value)


def test_settings_refuse_a_bad_endpoint_and_retention() -> None:
    with pytest.raises(ValidationError, match="evidence_s3_endpoint_url"):
        Settings(_env_file=None, detect={"evidence_s3_endpoint_url": "minio:9000"})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="evidence_retention_s"):
        Settings(_env_file=None, detect={"evidence_retention_s": 0})  # type: ignore[call-arg]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_DETECT__EVIDENCE_URL", "s3://evidence-bucket/vigil")
    monkeypatch.setenv("VIGIL_DETECT__EVIDENCE_RETENTION_S", "86400")
    monkeypatch.setenv("VIGIL_DETECT__EVIDENCE_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("VIGIL_DETECT__EVIDENCE_S3_REGION", "eu-west-1")
    detect = Settings(_env_file=None).detect  # type: ignore[call-arg]
    assert detect.evidence_url == "s3://evidence-bucket/vigil" and detect.evidence_retention_s == 86400
    assert (detect.evidence_s3_endpoint_url, detect.evidence_s3_region) == (
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    monkeypatch.setenv("VIGIL_DETECT__EVIDENCE_URL", "ftp://nope")
    with pytest.raises(ValidationError, match="unsupported evidence URL scheme 'ftp'"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def writes(result: str) -> float:
    return REGISTRY.get_sample_value("vigil_evidence_writes_total", {"result": result}) or 0.0


async def test_the_recorder_writes_in_the_background_and_counts_failures(tmp_path: Path) -> None:
    signals = list(window_signals(minute(time.time())).values())
    good = DiskArchive(tmp_path / "evidence", retention_s=HOUR)
    recorder = EvidenceRecorder(good)
    await recorder.start()
    await recorder.start()
    ok_before = writes("ok")
    recorder.submit(signals)
    await recorder.shutdown()  # drains what was queued
    await recorder.shutdown()
    assert writes("ok") - ok_before == 2
    assert len(await good.get(PROJECT, signals[0].fingerprint)) == 1

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the archive's folder should be")
    failing = EvidenceRecorder(DiskArchive(blocked, retention_s=HOUR), max_pending=1)
    await failing.start()
    errors_before, dropped_before = writes("error"), writes("dropped")
    failing.submit(signals)  # room for one: the other is dropped, not waited for
    await failing.shutdown()
    assert writes("error") - errors_before == 1
    assert writes("dropped") - dropped_before == 1
