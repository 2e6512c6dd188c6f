"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from tests.postgres import fresh_database
from vigil.store.db import alembic_config, upgrade


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    asyncio.run(upgrade(url))
    command.check(alembic_config(url))  # raises when the models declare something the migrations lack
    command.downgrade(alembic_config(url), "base")
    asyncio.run(upgrade(url))


@pytest.fixture
def postgres_database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_postgres_migrations_match_the_models(postgres_database: str) -> None:
    asyncio.run(upgrade(postgres_database))
    command.check(alembic_config(postgres_database))
