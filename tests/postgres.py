"""A fresh PostgreSQL database per test on the machine's server (127.0.0.1:5432, trust auth), or a
visible skip where there is none."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
import pytest

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_database() -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database, dropped afterwards."""
    name = f"vigil_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL is not usable at 127.0.0.1:5432: {exc}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
