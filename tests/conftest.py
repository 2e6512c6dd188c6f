"""Fixtures shared by the whole suite: a real Vigil runtime on loopback with its own nats-server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres import fresh_database
from vigil.bus.client import Bus
from vigil.bus.server import ManagedNatsServer
from vigil.runtime import Runtime
from vigil.settings import BusSettings, Settings
from vigil.store.db import create_engine, upgrade
from vigil.store.repo import Store
from vigil.store.sealing import SecretBox, generate_key

# rich fixes a console's width when the console is made, from COLUMNS or else the terminal; the CLI's
# consoles are made on first import, so without one width for the whole session the width of a
# table would depend on which test imported them first, and on whether a terminal is attached
os.environ["COLUMNS"] = "250"

ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = "pFdHCx8zq0VbEVo0y6KZ3Ra7j7IUbVVvHdtgo5JDC2A="
"""What separate services sharing one database are given as VIGIL_SECRET_KEY."""


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    bus = overrides.pop("bus", {})
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "admin_token": ADMIN_TOKEN,
        "host": "127.0.0.1",
        "otlp_http_port": 0,
        "otlp_grpc_port": 0,
        "api_port": 0,
        "bus": BusSettings(**{"ack_wait_s": 5.0, **bus}),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, then a PostgreSQL database (skipped without one)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """Vigil's store on `database_url`, migrated."""
    await upgrade(database_url)
    store = Store(create_engine(database_url), SecretBox([generate_key()]))
    try:
        yield store
    finally:
        await store.close()


class ExporterRetries(httpx.AsyncHTTPTransport):
    """Retries a 429 after its Retry-After, as the OpenTelemetry exporters do (bounded)."""

    ATTEMPTS = 8

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(self.ATTEMPTS - 1):
            response = await super().handle_async_request(request)
            if response.status_code != 429:
                return response
            await response.aclose()
            await asyncio.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
        return await super().handle_async_request(request)


class VigilHandle:
    """A running runtime and clients for its API and receiver."""

    def __init__(self, runtime: Runtime) -> None:
        assert runtime.api_http and runtime.receiver_http and runtime.receiver_grpc
        self.runtime = runtime
        self.api_url = f"http://127.0.0.1:{runtime.api_http.port}"
        self.receiver_url = f"http://127.0.0.1:{runtime.receiver_http.port}"
        self.grpc_target = f"127.0.0.1:{runtime.receiver_grpc.port}"
        self.api = httpx.AsyncClient(
            base_url=self.api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        # like an OpenTelemetry exporter, the receiver's client retries what is shed with a 429;
        # tests that expect the 429 itself use `receiver_raw`
        self.receiver = httpx.AsyncClient(base_url=self.receiver_url, timeout=30, transport=ExporterRetries())
        self.receiver_raw = httpx.AsyncClient(base_url=self.receiver_url, timeout=30)

    async def project_with_key(self, name: str = "payments") -> tuple[str, str]:
        created = await self.api.post("/api/v1/projects", json={"name": name})
        assert created.status_code == 201, created.text
        project_id = created.json()["id"]
        key = await self.api.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": "ci"})
        assert key.status_code == 201, key.text
        return project_id, key.json()["key"]

    async def close(self) -> None:
        await self.api.aclose()
        await self.receiver.aclose()
        await self.receiver_raw.aclose()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[VigilHandle]:
    """A runtime started with `settings`, stopped when the block ends."""
    runtime = Runtime(settings)
    await runtime.start()
    handle = VigilHandle(runtime)
    try:
        yield handle
    finally:
        await handle.close()
        await runtime.shutdown()


@pytest.fixture
async def vigil(tmp_path: Path) -> AsyncIterator[VigilHandle]:
    async with running(make_settings(tmp_path / "vigil")) as handle:
        yield handle


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow end-to-end tests first: `make test` hands files to its workers in this order as each
    becomes free, so the long ones start early instead of leaving one worker busy at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    """A bus client on a managed nats-server of its own."""
    settings = BusSettings()
    server = ManagedNatsServer(tmp_path / "nats", settings)
    await server.start()
    bus = Bus(server.url, settings)
    await bus.start()
    yield bus
    await bus.shutdown()
    await server.shutdown()
