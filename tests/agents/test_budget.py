"""Token budgets: limits per day and per incident, in memory and in SQL (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from vigil.agents.builtin.budget import (
    BudgetExhausted,
    BudgetLimits,
    MemoryUsageStore,
    SqlUsageStore,
    TokenBudget,
    UsageStore,
    template_set_key,
)
from vigil.errors import VigilError
from vigil.store.db import create_engine
from vigil.store.models import Base


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 1, 15, 23, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["memory", "sql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UsageStore]:
    if request.param == "memory":
        yield MemoryUsageStore()
        return
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'budget.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield SqlUsageStore(engine)
    finally:
        await engine.dispose()


async def test_the_daily_limit_refuses_a_call_that_would_go_over(store: UsageStore) -> None:
    clock = Clock()
    budget = TokenBudget(store, BudgetLimits(tokens_per_day=1_000), clock=clock)
    await budget.check("p", "i1", 1_000)  # exactly the limit is allowed
    await budget.record("p", "i1", 600)
    await budget.record("p", "i2", 300)
    await budget.check("p", "i3", 100)
    with pytest.raises(BudgetExhausted) as raised:
        await budget.check("p", "i3", 101)
    exc = raised.value
    assert (exc.limit_name, exc.used, exc.limit, exc.requested) == ("tokens_per_day", 900, 1_000, 101)
    assert exc.resets_at == datetime(2024, 1, 16, tzinfo=UTC)
    assert isinstance(exc, VigilError) and exc.status == 429
    assert exc.details["limit_name"] == "tokens_per_day"
    assert "900 of 1000" in str(exc)

    clock.now += timedelta(hours=1)  # a new UTC day
    await budget.check("p", "i3", 1_000)


async def test_the_incident_limit_counts_every_day(store: UsageStore) -> None:
    clock = Clock()
    budget = TokenBudget(store, BudgetLimits(tokens_per_incident=500), clock=clock)
    await budget.record("p", "incident", 300)
    clock.now += timedelta(days=1)
    await budget.record("p", "incident", 150)
    await budget.check("p", "other", 500)
    with pytest.raises(BudgetExhausted) as raised:
        await budget.check("p", "incident", 51)
    exc = raised.value
    assert (exc.limit_name, exc.used, exc.limit, exc.resets_at) == ("tokens_per_incident", 450, 500, None)
    assert exc.incident_key == "incident"


async def test_limits_are_per_project(store: UsageStore) -> None:
    budget = TokenBudget(store, BudgetLimits(tokens_per_day=100), limits={"big": BudgetLimits()})
    await budget.record("small", "i", 100)
    await budget.record("big", "i", 10_000)
    with pytest.raises(BudgetExhausted):
        await budget.check("small", "i", 1)
    await budget.check("big", "i", 1_000_000)
    budget.set_limits("small", BudgetLimits(tokens_per_day=200))
    await budget.check("small", "i", 100)
    assert budget.limits_for("other") == BudgetLimits(tokens_per_day=100)


async def test_usage_shows_limits_spending_and_what_is_left(store: UsageStore) -> None:
    clock = Clock()
    budget = TokenBudget(store, BudgetLimits(tokens_per_day=1_000, tokens_per_incident=400), clock=clock)
    clock.now -= timedelta(days=1)
    await budget.record("p", "a", 100)
    clock.now += timedelta(days=1)
    await budget.record("p", "a", 150)
    await budget.record("p", "a", 50)
    await budget.record("p", "b", 250)
    await budget.record("q", "a", 999)
    await budget.record("p", "c", 0)  # nothing spent, nothing stored

    assert await budget.usage("p") == {
        "project_id": "p",
        "day": "2024-01-15",
        "resets_at": "2024-01-16T00:00:00Z",
        "tokens_per_day": 1_000,
        "tokens_today": 450,
        "remaining_today": 550,
        "tokens_per_incident": 400,
        "incidents": {
            "a": {"tokens_today": 200, "tokens_total": 300, "remaining": 100},
            "b": {"tokens_today": 250, "tokens_total": 250, "remaining": 150},
        },
    }
    unlimited = await TokenBudget(store).usage("nobody")
    assert (unlimited["tokens_today"], unlimited["remaining_today"], unlimited["incidents"]) == (0, None, {})


async def test_a_long_incident_key_is_stored_as_a_digest(store: UsageStore) -> None:
    budget = TokenBudget(store, BudgetLimits(tokens_per_incident=100))
    key = "pipeline:" + "t" * 1_000
    await budget.record("p", key, 100)
    with pytest.raises(BudgetExhausted):
        await budget.check("p", key, 1)
    [stored] = (await budget.usage("p"))["incidents"]
    assert stored.startswith("sha256:") and len(stored) <= 255


async def test_concurrent_records_all_count(store: UsageStore) -> None:
    budget = TokenBudget(store)
    await asyncio.gather(*(budget.record("p", "i", 10) for _ in range(20)))
    assert await store.day_total("p", datetime.now(UTC).date()) == 200


async def test_stores_keep_days_apart(store: UsageStore) -> None:
    await store.add("p", date(2024, 1, 1), "i", 5)
    await store.add("p", date(2024, 1, 2), "i", 7)
    assert await store.day_total("p", date(2024, 1, 1)) == 5
    assert await store.day_by_incident("p", date(2024, 1, 2)) == {"i": 7}
    assert await store.incident_totals("p", ["i", "missing"]) == {"i": 12}
    assert await store.incident_totals("p", []) == {}


def test_template_set_keys_ignore_order_and_repetition() -> None:
    assert template_set_key(["b", "a", "a"]) == template_set_key(["a", "b"])
    assert template_set_key(["a"]) != template_set_key(["a", "b"])
    assert template_set_key(["a"], prefix="checkout").startswith("checkout:")
