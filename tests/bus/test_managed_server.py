"""The managed nats-server's runtime: as many cores as `server_max_procs`, unless the environment
says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.bus.server import ManagedNatsServer
from vigil.settings import BusSettings


def environment_of(pid_file: Path) -> dict[str, str]:
    raw = Path(f"/proc/{int(pid_file.read_text())}/environ").read_bytes()
    return dict(entry.decode().split("=", 1) for entry in raw.split(b"\0") if b"=" in entry)


async def server_environment(data_dir: Path, settings: BusSettings) -> dict[str, str]:
    server = ManagedNatsServer(data_dir, settings)
    await server.start()
    try:
        return environment_of(server.dir / "nats-server.pid")
    finally:
        await server.shutdown()


async def test_the_server_runs_on_the_cores_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    assert (await server_environment(tmp_path / "one", BusSettings()))["GOMAXPROCS"] == "1"
    assert (await server_environment(tmp_path / "three", BusSettings(server_max_procs=3)))["GOMAXPROCS"] == "3"
    assert "GOMAXPROCS" not in await server_environment(tmp_path / "all", BusSettings(server_max_procs=0))


async def test_gomaxprocs_in_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOMAXPROCS", "2")
    assert (await server_environment(tmp_path, BusSettings()))["GOMAXPROCS"] == "2"
