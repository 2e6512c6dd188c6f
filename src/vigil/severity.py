"""OpenTelemetry severity numbers and the names people write in configuration."""

from __future__ import annotations

SEVERITY_BY_NAME: dict[str, int] = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
    "CRITICAL": 21,
}

_TEXT_BY_NUMBER_RANGE = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def parse_severity(value: str | int) -> int:
    """Accept a name (any case, with OTel's numbered forms such as ERROR2) or a number 1-24."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 24:
            return value
        raise ValueError(f"severity number must be 1-24, got {value}")
    if isinstance(value, str):
        name = value.strip().upper()
        if name.isascii() and name.isdigit():
            return parse_severity(int(name))
        number = severity_from_text(name)
        if number:
            return number
    names = ", ".join(sorted(SEVERITY_BY_NAME))
    raise ValueError(f"unknown severity {value!r}; use one of {names} or a number 1-24")


def severity_from_text(text: str) -> int:
    """The number of a severity name (any case) or of OTel's numbered forms (ERROR2 is 18); 0 for
    anything else."""
    name = text.strip().upper()
    base, step = name, 0
    if name[-1:] in ("2", "3", "4"):
        base, step = name[:-1], int(name[-1]) - 1
    number = SEVERITY_BY_NAME.get(base)
    return number + step if number is not None else 0


def severity_text(number: int) -> str:
    if number <= 0:
        return ""
    return _TEXT_BY_NUMBER_RANGE[min((number - 1) // 4, 5)]
