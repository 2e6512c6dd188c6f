"""`vigil up` as a real child process, for tests that kill it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN, SECRET_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortTaken(RuntimeError):
    """The process exited because a port it was given is in use."""


class VigilProcess:
    def __init__(self, data_dir: Path, *, command: tuple[str, ...] = ("up",), **env: str) -> None:
        self.data_dir = data_dir
        self.command = command
        self.env = {
            **os.environ,
            "VIGIL_ADMIN_TOKEN": ADMIN_TOKEN,
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_LOG_LEVEL": "WARNING",
            # separate services share one database, so one key; `vigil up` makes its own
            **({} if command == ("up",) else {"VIGIL_SECRET_KEY": SECRET_KEY}),
            **env,
        }
        self._pick_ports()
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_once = False
        self.log = data_dir.parent / f"vigil-{'-'.join(command)}.log"

    def _pick_ports(self) -> None:
        self.api_port, self.http_port, self.grpc_port = free_port(), free_port(), free_port()
        self.ops_port = free_port()
        self.env.update(
            VIGIL_API_PORT=str(self.api_port),
            VIGIL_OTLP_HTTP_PORT=str(self.http_port),
            VIGIL_OTLP_GRPC_PORT=str(self.grpc_port),
            VIGIL_OPS_PORT=str(self.ops_port),
        )

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def probe_url(self) -> str:
        """Where this process answers /readyz: its receiver, its API, or its ops port."""
        port = {"up": self.http_port, "receiver": self.http_port, "api": self.api_port}.get(
            self.command[0], self.ops_port
        )
        return f"http://127.0.0.1:{port}"

    def start(self) -> None:
        # a port free_port() found may be taken by another test's process before vigil binds it
        # (tests run on several workers): a first start that lost its port tries fresh ones once
        try:
            self._start()
        except PortTaken:
            if self.ready_once:
                raise
            self._pick_ports()
            self._start()
        self.ready_once = True

    def _start(self) -> None:
        vigil = Path(sys.executable).parent / "vigil"
        written = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(vigil), *self.command, "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        # generous: on a loaded machine (tests run on several workers) starting takes far longer
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = self.log.read_bytes()[written:].decode(errors="replace")
                if "already in use" in text.lower():
                    raise PortTaken(text[-3000:])
                raise RuntimeError(f"vigil up exited: {text[-3000:]}")
            try:
                if httpx.get(f"{self.probe_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("vigil up did not become ready")

    def said(self, text: str, timeout_s: float = 30.0) -> str:
        """Its output once it holds `text` (the banner comes after ready: the API answers first)."""
        deadline = time.monotonic() + timeout_s
        while (output := self.log.read_text(errors="replace")).find(text) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in vigil's output: {output[-3000:]}")
            time.sleep(0.1)
        return output

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
