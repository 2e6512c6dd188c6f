"""Deduplication: the first of a group goes out, repeats become counts, nothing is uncounted."""

from __future__ import annotations

from typing import Any

from vigil.pipeline.dedupe import Deduplicator
from vigil.specs import DedupeSpec


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(template: str, n: int) -> dict[str, Any]:
    return {"body": f"{template} #{n}", "timestamp": f"2024-01-01T00:00:{n:02d}Z", "template_id": template}


def test_first_goes_out_repeats_roll_up_at_steps_and_the_window_reports_the_rest() -> None:
    clock, emitted = Clock(), []
    dedupe = Deduplicator(
        DedupeSpec(window_s=60, rollup_steps=[10, 100], max_samples=2), emitted.append, clock=clock
    )
    immediate = [item for n in range(150) if (item := dedupe.offer(record("t", n % 60), "svc")) is not None]
    assert [(i["dedupe"], i["count"]) for i in immediate] == [("first", 1), ("rollup", 9), ("rollup", 90)]
    assert immediate[0]["samples"] == ["t #0"]
    assert immediate[1]["samples"] == ["t #0", "t #1"]
    assert immediate[1]["first_seen"] == "2024-01-01T00:00:00Z"
    assert immediate[1]["last_seen"] == "2024-01-01T00:00:09Z"
    clock.now = 59.0
    dedupe.expire()
    assert emitted == []
    clock.now = 61.0
    dedupe.expire()
    assert [(i["dedupe"], i["count"]) for i in emitted] == [("final", 50)]
    assert sum(i["count"] for i in immediate + emitted) == 150
    assert dedupe.groups == 0


def test_groups_are_per_service_and_template() -> None:
    dedupe = Deduplicator(DedupeSpec(), lambda _: None)
    assert dedupe.offer(record("a", 1), "svc-1") is not None
    assert dedupe.offer(record("a", 2), "svc-2") is not None
    assert dedupe.offer(record("b", 3), "svc-1") is not None
    assert dedupe.offer(record("a", 4), "svc-1") is None
    assert dedupe.groups == 3


def test_a_group_without_repeats_closes_silently_and_eviction_reports() -> None:
    emitted: list[dict[str, Any]] = []
    dedupe = Deduplicator(DedupeSpec(max_groups=2), emitted.append)
    dedupe.offer(record("a", 1), "s")
    dedupe.offer(record("a", 2), "s")
    dedupe.offer(record("b", 1), "s")
    dedupe.offer(record("c", 1), "s")  # evicts the oldest group, "a", which folded one record
    assert [(i["template_id"], i["count"], i["dedupe"]) for i in emitted] == [("a", 1, "final")]
    dedupe.close_all()
    assert len(emitted) == 1
