"""The database engine and schema migrations (Alembic, applied at start)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson
import sqlalchemy
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from vigil.private_files import make_private, private_file

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class RawJson(bytes):
    """A JSON column's value already encoded (as a batch's records arrive on the bus): stored as
    it is, read back decoded like any other."""


def _json(value: object) -> str:
    # JSON columns are encoded (and decoded, by orjson.loads) on the event loop: the detector's
    # state is megabytes, and every workflow step reads and writes its workflow's body
    if isinstance(value, RawJson):
        return value.decode()
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            private_sqlite_files(Path(db_path))
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, json_serializer=_json, json_deserializer=orjson.loads
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        json_serializer=_json,
        json_deserializer=orjson.loads,
    )


def create_sync_sqlite_engine(engine: AsyncEngine) -> Engine:
    """A blocking engine on the SQLite file of `engine`, for work done in one thread hop: through
    aiosqlite, every statement, cursor and commit is a round trip to its thread."""
    sync = sqlalchemy.create_engine(
        engine.url.set(drivername="sqlite"),
        connect_args={"timeout": 30},
        json_serializer=_json,
        json_deserializer=orjson.loads,
    )
    event.listen(sync, "connect", _sqlite_pragmas)
    return sync


def create_inline_sqlite_engine(engine: AsyncEngine) -> Engine:
    """A blocking engine on the SQLite file of `engine` whose one connection never waits for a
    lock (a write another connection holds the lock for fails at once) and never checkpoints:
    for short writes on the event loop's own thread (`vigil.store.batch_sqlite`)."""
    inline = sqlalchemy.create_engine(
        engine.url.set(drivername="sqlite"),
        poolclass=StaticPool,
        connect_args={"check_same_thread": False, "timeout": 0},
        json_serializer=_json,
        json_deserializer=orjson.loads,
    )
    event.listen(inline, "connect", _sqlite_pragmas)
    event.listen(inline, "connect", _never_wait)
    return inline


def _never_wait(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def private_sqlite_files(path: Path) -> None:
    """The database and its WAL and shared-memory files, 0600. SQLite gives the WAL and SHM
    files it creates the mode of the database file, so the database is made first, empty."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        make_private(path.with_name(path.name + suffix))


def session_factory(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str) -> None:
    """Bring the schema to the newest revision. Alembic runs its own loop, so it gets a thread."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


def sqlite_locked(exc: Exception) -> bool:
    """Whether SQLite refused for a lock another connection holds (past the busy wait, if any);
    SQLAlchemy's wrapping of what its own calls raise, a commit for one, included."""
    if isinstance(exc, sqlalchemy.exc.OperationalError) and isinstance(exc.orig, Exception):
        exc = exc.orig
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)
