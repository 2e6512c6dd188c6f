"""How the rules engine reads and words evidence: an item's searchable text, quotes, counts and
spans in prose, and a total order on items so that no answer depends on the input's order."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime

from vigil.agents.builtin.models import EvidenceItem

MAX_TEXT_CHARS = 4096
"""Longer samples and attribute values are searched on their start only, to bound the cost."""
QUOTE_CHARS = 120


class Haystack:
    """An item's texts joined by newlines (which no probe crosses), as is and in lower case."""

    __slots__ = ("folded", "labels", "parts", "text")

    def __init__(self, item: EvidenceItem) -> None:
        self.labels = ["template"]
        self.parts = [item.template]
        for n, sample in enumerate(item.samples, 1):
            if sample[:MAX_TEXT_CHARS] not in self.parts:  # repeated samples say nothing new
                self.labels.append(f"sample {n}")
                self.parts.append(sample[:MAX_TEXT_CHARS])
        for key, value in sorted(item.attributes.items()):
            self.labels.append(f"attribute {key}")
            self.parts.append(f"{key}={value[:MAX_TEXT_CHARS]}")
        self.text = "\n".join(self.parts)
        self.folded = self.text.lower()

    def where(self, at: int, folded: bool = False) -> str:
        """The label of the part in which offset `at` (of `text`, or of `folded`) lies."""
        if folded and len(self.folded) != len(self.text):
            # Lower-casing changed some lengths (rare non-ASCII letters): offsets differ.
            starts = _starts(part.lower() for part in self.parts)
        else:
            starts = _starts(self.parts)
        return self.labels[bisect.bisect_right(starts, at) - 1]

    def snippet(self, at: int, key: str) -> str:
        if len(self.folded) != len(self.text):
            return key
        return quote(self.text[at : at + len(key)], 80)


def _starts(texts: Iterable[str]) -> list[int]:
    starts: list[int] = []
    offset = 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + 1
    return starts


def item_key(item: EvidenceItem) -> tuple[object, ...]:
    """A total order on items, so that ties never depend on the order of the input."""
    return (
        item.template_id,
        item.service,
        item.template,
        item.count,
        item.severity_number,
        item.first_seen,
        item.last_seen,
        item.samples,
        sorted(item.attributes.items()),
        item.trace_ids,
    )


def services(items: Iterable[EvidenceItem]) -> str:
    names = sorted({i.service for i in items})
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:2])} and {len(names) - 2} more services"


def records(items: Iterable[EvidenceItem]) -> str:
    return plural(sum(i.count for i in items), "record")


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def span(items: list[EvidenceItem]) -> str:
    seconds = (max(i.last_seen for i in items) - min(i.first_seen for i in items)).total_seconds()
    if seconds < 1:
        return ""
    if seconds < 120:
        return f" in {round(seconds)} s"
    if seconds < 7200:
        return f" in {round(seconds / 60)} min"
    return f" in {seconds / 3600:.1f} h"


def when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
