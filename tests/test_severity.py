"""Severity names and numbers as people write them in configuration."""

from __future__ import annotations

import pytest

from vigil.severity import parse_severity, severity_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("TRACE", 1),
        ("debug", 5),
        ("Info", 9),
        ("warn", 13),
        ("WARNING", 13),
        ("error", 17),
        ("FATAL", 21),
        ("critical", 21),
        ("  error  ", 17),
    ],
)
def test_names_in_any_case(value: str, expected: int) -> None:
    assert parse_severity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ERROR2", 18), ("error3", 19), ("FATAL4", 24), ("trace2", 2), ("WARN4", 16), ("warning3", 15)],
)
def test_numbered_forms(value: str, expected: int) -> None:
    assert parse_severity(value) == expected


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (17, 17), (24, 24), ("17", 17), (" 24 ", 24)])
def test_numbers_and_numeric_strings(value: int | str, expected: int) -> None:
    assert parse_severity(value) == expected


@pytest.mark.parametrize(("value", "shown"), [(0, "got 0"), (25, "got 25"), (-3, "got -3"), ("0", "got 0")])
def test_numbers_out_of_range(value: int | str, shown: str) -> None:
    with pytest.raises(ValueError, match=f"severity number must be 1-24, {shown}"):
        parse_severity(value)


@pytest.mark.parametrize("value", ["LOUD", True, False, "ERROR1", "ERROR5", "ERROR22", "", "²", 17.0])
def test_invalid_values_name_the_choices(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_severity(value)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"unknown severity {value!r}; use one of "
        "CRITICAL, DEBUG, ERROR, FATAL, INFO, TRACE, WARN, WARNING or a number 1-24"
    )


@pytest.mark.parametrize(
    ("number", "text"),
    [(0, ""), (1, "TRACE"), (8, "DEBUG"), (9, "INFO"), (13, "WARN"), (20, "ERROR"), (24, "FATAL")],
)
def test_severity_text(number: int, text: str) -> None:
    assert severity_text(number) == text
