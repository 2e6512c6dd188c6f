"""Where an action notes, before acting, what it saw, for systems that cannot hold the note themselves.

Kubernetes actions keep their notes on the deployment, in the same write as the change. A Docker
container has nowhere to write (labels are fixed at creation), so `docker.restart` writes its note
here first, then restarts: a repeat that finds the note and a container started since knows the
restart happened. The ledger must outlive the process for that to hold across a crash:
`FileLedger` does on one host; the workflow may hand in one backed by its database instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any, Protocol

import orjson

from vigil.private_files import private_dir

__all__ = ["ActionLedger", "FileLedger", "MemoryLedger"]


class ActionLedger(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, note: dict[str, Any]) -> None:
        """Durable when it returns."""
        ...


class MemoryLedger:
    """For tests and single runs: gone with the process."""

    def __init__(self) -> None:
        self._notes: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        return self._notes.get(key)

    async def put(self, key: str, note: dict[str, Any]) -> None:
        self._notes[key] = dict(note)


class FileLedger:
    """One small JSON file per key in a private directory, written whole (temp file, fsync, rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    async def get(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._read, key)

    async def put(self, key: str, note: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, key, note)

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            stored: dict[str, Any] = orjson.loads(self._path(key).read_bytes())
        except FileNotFoundError:
            return None
        return stored["note"] if stored.get("key") == key else None

    def _write(self, key: str, note: dict[str, Any]) -> None:
        private_dir(self.directory)
        target = self._path(key)
        temp = target.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps({"key": key, "note": note}))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
