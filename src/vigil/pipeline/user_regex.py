"""User regexes (pipeline filters, custom redaction rules) run by RE2: linear time in the text,
whatever the pattern, so no pattern can stall the event loop that routes every project's records.

RE2 has no backreferences and no lookaround; a pattern that uses them is refused with a message
saying so. Python's `re` remains for Vigil's own patterns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import re2

MAX_PATTERN_LENGTH = 1000
_MAX_PROGRAM_MEMORY = 1 << 20
"""RE2 refuses a pattern whose compiled program would need more: `(a{1000}){1000}` and the like."""


def _options(*, ignore_case: bool = False, capture: bool = True) -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is raised to the caller, not printed on stderr
    options.max_mem = _MAX_PROGRAM_MEMORY
    options.case_sensitive = not ignore_case
    options.never_capture = not capture
    return options


def check_pattern(pattern: str, *, ignore_case: bool = False) -> None:
    """Raise ValueError, with a message fit for an API answer, unless RE2 takes `pattern`."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"regex is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH}")
    try:
        re2.compile(pattern, _options(ignore_case=ignore_case))
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"invalid regex {pattern!r}: {reason} (patterns use RE2 syntax, which runs in linear "
            "time: no backreferences such as \\1, no lookahead or lookbehind)"
        ) from None


class UserRegex:
    """A checked user pattern: `search` answers whether it occurs, `finditer` yields its matches
    (with `re`-like match objects: group, start, end, span)."""

    __slots__ = ("_finder", "_set", "groupindex", "pattern")

    def __init__(self, pattern: str, *, ignore_case: bool = False) -> None:
        check_pattern(pattern, ignore_case=ignore_case)
        self.pattern = pattern
        # A one-pattern set answers "does it occur" without building match objects: several
        # times faster than a search, for the filters that test every record.
        self._set = re2.Set.SearchSet(_options(ignore_case=ignore_case, capture=False))
        self._set.Add(pattern)
        self._set.Compile()
        self._finder = re2.compile(pattern, _options(ignore_case=ignore_case))
        self.groupindex: dict[str, int] = dict(self._finder.groupindex)

    def search(self, text: str) -> bool:
        return bool(self._set.Match(text))

    def finditer(self, text: str) -> Iterator[Any]:
        if not self._set.Match(text):  # most text holds no match: skip building match objects
            return iter(())
        return iter(self._finder.finditer(text))
