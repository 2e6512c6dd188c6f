"""Pasted lines as people copy them become records: timestamps, levels and services where the line
says them, stack traces as one record, JSON logs by their usual keys; redacted, with templates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vigil.errors import PayloadTooLarge, ValidationFailed
from vigil.workflow.pasted import decode, parse, prepare

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_text_lines_give_time_level_service_and_message() -> None:
    text = "\n".join(
        [
            "2026-12-06T10:00:01.250Z ERROR service=checkout payment failed",
            "2026-12-06 10:00:02,500 WARNING [main] cache is cold",
            "Dec  6 10:00:03 node-1 kubelet[812]: Back-off restarting failed container",
            "2026-12-06 10:00:04 UTC LOG:  duration: 5123.4 ms  statement: SELECT 1",
            "Log in failed for alice",
            "plain line without anything",
        ]
    )
    records = parse(text, now=NOW)
    got = [
        (r["timestamp"], r["severityNumber"], r["resourceAttributes"]["service.name"], r["body"])
        for r in records
    ]
    assert got[0] == ("2026-12-06T10:00:01.250000Z", 17, "checkout", "ERROR service=checkout payment failed")
    assert got[1][:3] == ("2026-12-06T10:00:02.500000Z", 13, "pasted")
    assert got[2] == ("2026-12-06T10:00:03.000000Z", 0, "kubelet", "Back-off restarting failed container")
    assert got[3][1] == 9  # PostgreSQL's LOG
    assert got[4][1] == 0 and got[5][1] == 0  # "Log in" is English, and no level at all is unset
    assert got[5][0] == NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_stack_traces_continue_their_record_and_json_logs_are_read_by_their_keys() -> None:
    text = "\n".join(
        [
            "2026-12-06T10:00:01Z ERROR Unhandled exception",
            "java.lang.IllegalStateException: boom",
            "\tat com.shop.Checkout.pay(Checkout.java:42)",
            "Caused by: java.net.SocketTimeoutException: Read timed out",
            '{"level": "warn", "msg": "slow call", "service": {"name": "cart"}, "time": "2026-12-06T10:00:05Z"}',
            '{"severity": "ERROR", "message": "db down", "logger": "orders"}',
        ]
    )
    first, second, third = parse(text, now=NOW)
    assert first["body"].count("\n") == 3 and "Caused by" in first["body"]
    # without a log line above it, an exception line is a record of its own
    assert len(parse("java.lang.IllegalStateException: a\njava.lang.IllegalStateException: b", now=NOW)) == 2
    assert (second["severityNumber"], second["resourceAttributes"]["service.name"], second["body"]) == (
        13,
        "cart",
        "slow call",
    )
    assert second["timestamp"].startswith("2026-12-06T10:00:05")
    assert (third["severityNumber"], third["resourceAttributes"]["service.name"]) == (17, "orders")


def test_records_are_redacted_before_their_templates_are_mined() -> None:
    records = prepare(
        parse(
            "\n".join(
                f"ERROR login for bob{n}@example.com failed with password=hunter{n}2" for n in range(3)
            ),
            now=NOW,
        )
    )
    assert all("example.com" not in r["body"] and "hunter" not in r["body"] for r in records)
    assert (
        len({r["template_id"] for r in records}) == 1 and "<*>" in records[0]["template"]
    ) or "REDACTED" in records[0]["template"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", ValidationFailed),
        (b"   \n\n", ValidationFailed),
        (b"\x00\x01\x02binary", ValidationFailed),
        (b"\xc3\x28 invalid utf-8", ValidationFailed),
        (b"x" * (4 * 1024 * 1024 + 1), PayloadTooLarge),
    ],
)
def test_what_is_not_lines_of_text_is_refused(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(body)


def test_too_many_lines_are_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        parse("ERROR x\n" * 100_001)
