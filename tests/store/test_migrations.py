"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command

from vigil.store.db import alembic_config, upgrade

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def test_sqlite_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    asyncio.run(upgrade(url))
    command.check(alembic_config(url))  # raises when the models declare something the migrations lack
    command.downgrade(alembic_config(url), "base")
    asyncio.run(upgrade(url))


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    name = f"vigil_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL is not usable at 127.0.0.1:5432: {exc}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_postgres_migrations_match_the_models(postgres_database: str) -> None:
    asyncio.run(upgrade(postgres_database))
    command.check(alembic_config(postgres_database))
