"""Folds repeats of one problem into counts, so an agent sees each distinct problem once.

Records are grouped by (service, template) within a window. The first record of a group goes out
at once; later ones only raise the group's count, keep its last-seen time and a few samples. When
the count passes one of the roll-up steps (10, 100, 1,000, ... by default) an item goes out that
stands for the records folded since the previous one, and when the window closes a last item
reports whatever was folded after the last step. Every item says how many records it stands for.

A crash loses at most the counts folded since a group's last item: the records themselves were
already acknowledged as represented.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter

from vigil.records import FlatRecord
from vigil.specs import DedupeSpec

FOLDED = Counter(
    "vigil_dedupe_folded_total", "Records folded into a count instead of being sent.", ["pipeline"]
)


@dataclass(slots=True)
class _Group:
    first: FlatRecord
    latest: FlatRecord
    opened: float
    total: int = 1
    reported: int = 1
    next_step: int = 0
    samples: list[str] = field(default_factory=list)


def _item(base: FlatRecord, group: _Group, count: int, kind: str) -> FlatRecord:
    return {
        **base,
        "count": count,
        "first_seen": group.first["timestamp"],
        "last_seen": group.latest["timestamp"],
        "samples": list(group.samples),
        "dedupe": kind,
    }


class Deduplicator:
    def __init__(
        self,
        spec: DedupeSpec,
        emit: Callable[[FlatRecord], None],
        *,
        pipeline: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._emit = emit
        self._clock = clock
        self._groups: dict[tuple[str, str], _Group] = {}
        self._folded = FOLDED.labels(pipeline)

    def offer(self, record: FlatRecord, service: str) -> FlatRecord | None:
        """The item to send now for `record`, or None when it was folded into its group."""
        key = (service, str(record.get("template_id", record["body"])))
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self._spec.max_groups:
                self._close(next(iter(self._groups)))
            group = self._groups[key] = _Group(record, record, self._clock())
            if self._spec.max_samples:
                group.samples.append(record["body"])
            return _item(record, group, 1, "first")
        group.total += 1
        group.latest = record
        if len(group.samples) < self._spec.max_samples:
            group.samples.append(record["body"])
        steps = self._spec.rollup_steps
        if group.next_step < len(steps) and group.total >= steps[group.next_step]:
            while group.next_step < len(steps) and group.total >= steps[group.next_step]:
                group.next_step += 1
            count, group.reported = group.total - group.reported, group.total
            return _item(record, group, count, "rollup")
        self._folded.inc()
        return None

    def expire(self) -> None:
        """Close the groups whose window has ended, reporting what they folded since their last item."""
        deadline = self._clock() - self._spec.window_s
        for key in [k for k, g in self._groups.items() if g.opened <= deadline]:
            self._close(key)

    def close_all(self) -> None:
        for key in list(self._groups):
            self._close(key)

    def _close(self, key: tuple[str, str]) -> None:
        group = self._groups.pop(key)
        unreported = group.total - group.reported
        if unreported:
            self._emit(_item(group.latest, group, unreported, "final"))

    @property
    def groups(self) -> int:
        return len(self._groups)
