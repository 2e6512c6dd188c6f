"""User regexes run on RE2: linear time, or refused with a message that says why."""

from __future__ import annotations

import pytest

from vigil.pipeline.user_regex import MAX_PATTERN_LENGTH, UserRegex, check_pattern


def test_catastrophic_pattern_is_taken_and_answers_at_once() -> None:
    regex = UserRegex(r"^(a+)+$")
    # Python's re backtracks 2^n times on this input: hours at n = 60; RE2 is linear.
    assert not regex.search("a" * 60 + "!")
    assert regex.search("a" * 60)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "invalid escape sequence"),
        (r"(?<=x)y", "invalid perl operator"),
        (r"(unclosed", "missing )"),
        (r"(a{1000}){1000}", "invalid repetition size"),
    ],
)
def test_unsupported_or_invalid_patterns_are_refused_clearly(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        check_pattern(pattern)
    message = str(info.value)
    assert message.startswith(f"invalid regex {pattern!r}: {reason}")
    assert "RE2 syntax" in message


def test_overlong_patterns_are_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        check_pattern("a" * (MAX_PATTERN_LENGTH + 1))


def test_matches_carry_spans_and_named_groups() -> None:
    regex = UserRegex(r"customer_id=(?P<secret>\d+)")
    matches = list(regex.finditer("x customer_id=42 y customer_id=7"))
    index = regex.groupindex["secret"]
    assert [(m.start(index), m.end(index), m.group()) for m in matches] == [
        (14, 16, "customer_id=42"),
        (31, 32, "customer_id=7"),
    ]


def test_ignore_case() -> None:
    assert UserRegex("timeout", ignore_case=True).search("upstream TIMEOUT")
    assert not UserRegex("timeout").search("upstream TIMEOUT")
