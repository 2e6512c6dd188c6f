"""Grouped transactions on SQLite's writer thread: those waiting together commit together, each
caller gets its own result or its own failure, and what is answered is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Connection, Engine, event, text

from vigil.store.grouped import GroupedTransactions


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'grouped.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    yield engine
    engine.dispose()


@pytest.fixture
def thread() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown()


def _insert(name: str, connection: Connection) -> str:
    connection.execute(text("INSERT INTO items (name) VALUES (:name)"), {"name": name})
    return name


def _stored(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {row[0] for row in connection.execute(text("SELECT name FROM items"))}


async def test_works_waiting_together_commit_together(engine: Engine, thread: ThreadPoolExecutor) -> None:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _: commits.append(1))
    grouped = GroupedTransactions(engine, thread)
    names = [f"item-{n}" for n in range(50)]

    results = await asyncio.gather(*(grouped.run(lambda c, n=n: _insert(n, c)) for n in names))

    assert results == names
    assert _stored(engine) == set(names)
    assert len(commits) < len(names) / 2


async def test_a_failing_work_fails_alone(engine: Engine, thread: ThreadPoolExecutor) -> None:
    grouped = GroupedTransactions(engine, thread)
    await grouped.run(lambda c: _insert("taken", c))

    outcomes = await asyncio.gather(
        grouped.run(lambda c: _insert("first", c)),
        grouped.run(lambda c: _insert("taken", c)),  # the primary key is taken
        grouped.run(lambda c: _insert("last", c)),
        return_exceptions=True,
    )

    assert outcomes[0] == "first" and outcomes[2] == "last"
    assert isinstance(outcomes[1], sqlalchemy.exc.IntegrityError)
    assert _stored(engine) == {"taken", "first", "last"}


async def test_what_is_answered_is_committed(engine: Engine, thread: ThreadPoolExecutor) -> None:
    grouped = GroupedTransactions(engine, thread)

    async def insert_and_look(name: str) -> bool:
        await grouped.run(lambda c: _insert(name, c))
        return name in _stored(engine)  # another connection sees it

    assert all(await asyncio.gather(*(insert_and_look(f"seen-{n}") for n in range(20))))


async def test_a_caller_that_gave_up_does_not_stop_the_others(
    engine: Engine, thread: ThreadPoolExecutor
) -> None:
    grouped = GroupedTransactions(engine, thread, max_group=4)
    tasks = [asyncio.create_task(grouped.run(lambda c, n=n: _insert(f"n-{n}", c))) for n in range(12)]
    await asyncio.sleep(0)
    tasks[0].cancel()

    done = await asyncio.gather(*tasks[1:])

    assert done == [f"n-{n}" for n in range(1, 12)]
    await grouped.run(lambda c: _insert("after", c))  # the writer still runs
    assert _stored(engine) >= {f"n-{n}" for n in range(1, 12)} | {"after"}
