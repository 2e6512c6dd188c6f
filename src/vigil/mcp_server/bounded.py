"""What a tool returns, bounded: a model's context is small, and one large incident or log line
must not fill it. Strings are cut, lists shortened (saying how many were left out), and the
whole answer kept under a byte cap, tighter and tighter until it fits."""

from __future__ import annotations

from typing import Any

import orjson

MAX_BYTES = 24_000
"""The most a tool's answer takes, as JSON."""
_LEVELS = ((2000, 50), (500, 20), (200, 10), (80, 5), (40, 2))
"""(characters per string, items per list) tried in turn until the answer fits."""


def size(value: Any) -> int:
    return len(orjson.dumps(value, default=str))


def _cut(value: Any, chars: int, items: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= chars else value[: chars - 1] + "…"
    if isinstance(value, dict):
        return {str(k)[:chars]: _cut(v, chars, items) for k, v in value.items()}
    if isinstance(value, list | tuple):
        kept = [_cut(v, chars, items) for v in value[:items]]
        if len(value) > items:
            kept.append(f"… {len(value) - items} more left out")
        return kept
    if value is None or isinstance(value, bool | int | float):
        return value
    return _cut(str(value), chars, items)


def bounded(answer: dict[str, Any], max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """`answer` as it is when it fits; otherwise cut down, with `truncated: true`."""
    answer = orjson.loads(orjson.dumps(answer, default=str))  # plain JSON types only
    if size(answer) <= max_bytes:
        return answer
    for chars, items in _LEVELS:
        cut = _cut(answer, chars, items)
        if size(cut) + 20 <= max_bytes:
            return {**cut, "truncated": True}
    return {"truncated": True, "error": f"the answer is over {max_bytes} bytes even when cut down"}


def items_within(items: list[dict[str, Any]], max_bytes: int) -> tuple[list[dict[str, Any]], int]:
    """The first items whose JSON fits in `max_bytes`, and how many did not."""
    kept: list[dict[str, Any]] = []
    used = 2
    for item in items:
        used += size(item) + 1
        if used > max_bytes:
            break
        kept.append(item)
    return kept, len(items) - len(kept)
