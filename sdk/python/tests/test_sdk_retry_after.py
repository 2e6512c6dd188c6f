from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from vigil_sdk._wire import parse_retry_after


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-3") == 0.0


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = parse_retry_after(when)
    assert seconds is not None
    assert 25 <= seconds <= 31


def test_unusable_retry_after_is_ignored() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
