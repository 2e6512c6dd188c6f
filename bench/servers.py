"""Start the servers under test as subprocesses: `vigil up` and the baseline receiver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import nats
from prometheus_client.parser import text_string_to_metric_families

from vigil.bus.server import managed_nats_url
from vigil.bus.topology import ROUTER_CONSUMER, records_stream

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout_s: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} while starting")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {timeout_s}s")


def discard(data_dir: Path) -> None:
    """A run's data directory, deleted once the run is over: the next run then does not share the
    disk with the kernel writing this one's bus files back (about 2.5 GB per ingest run)."""
    shutil.rmtree(data_dir, ignore_errors=True)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class VigilProcess:
    """`vigil up` in its own data directory, on free loopback ports, with an admin client."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.api_port = free_port()
        self.otlp_http_port = free_port()
        self.otlp_grpc_port = free_port()
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.api: httpx.Client | None = None

    @property
    def logs_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}/v1/logs"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def nats_pid(self) -> int:
        return int((self.data_dir / "nats" / "nats-server.pid").read_text())

    def start(self) -> None:
        """Started and answering; started again on other ports when one it was given was taken
        meanwhile (another process may bind a port between `free_port` and `vigil up`)."""
        for attempt in range(3):
            try:
                self._start()
                return
            except RuntimeError as exc:
                said = self.log_tail(40)
                if "cannot listen" not in said or attempt == 2:
                    raise RuntimeError(f"{exc}; `vigil up` said:\n{said}") from exc
                self.api_port, self.otlp_http_port, self.otlp_grpc_port = (
                    free_port(),
                    free_port(),
                    free_port(),
                )

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "VIGIL_ADMIN_TOKEN": ADMIN_TOKEN,
            "VIGIL_API_PORT": str(self.api_port),
            "VIGIL_OTLP_HTTP_PORT": str(self.otlp_http_port),
            "VIGIL_OTLP_GRPC_PORT": str(self.otlp_grpc_port),
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        log = (self.data_dir / "vigil.log").open("ab")
        # The data directory is the working directory: no stray .env or vigil.yaml is picked up.
        self.process = subprocess.Popen(
            [str(BIN / "vigil"), "up", "--data-dir", str(self.data_dir)],
            cwd=self.data_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_http(f"http://127.0.0.1:{self.otlp_http_port}/readyz", process=self.process)
        wait_http(f"http://127.0.0.1:{self.api_port}/healthz", process=self.process)
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.api_port}/api/v1",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )

    def project_with_key(self, name: str = "bench") -> tuple[str, str]:
        assert self.api is not None
        created = self.api.post("/projects", json={"name": name})
        created.raise_for_status()
        project_id: str = created.json()["id"]
        key = self.api.post(f"/projects/{project_id}/api-keys", json={"name": "bench"})
        key.raise_for_status()
        return project_id, key.json()["key"]

    def put_pipeline(self, project_id: str, name: str, spec: dict[str, Any]) -> None:
        assert self.api is not None
        self.api.put(f"/projects/{project_id}/pipelines/{name}", json=spec).raise_for_status()

    def wait_routers(self, count: int, timeout_s: float = 120.0) -> None:
        """Until `count` routers wait on the records stream (`VIGIL_PIPELINE_WORKERS` processes take
        seconds to import and connect; a run that starts before them measures their start)."""
        asyncio.run(_wait_routers(managed_nats_url(self.data_dir), count, timeout_s))

    def metric_sum_count(self, name: str, **labels: str) -> tuple[int, float]:
        """(count, sum) of a histogram on Vigil's /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.api_port}/metrics", timeout=10).text
        count, total = 0, 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith(name) and all(sample.labels.get(k) == v for k, v in labels.items()):
                    if sample.name == f"{name}_count":
                        count = int(sample.value)
                    elif sample.name == f"{name}_sum":
                        total = sample.value
        return count, total

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None
        if self.process is not None:
            stop(self.process)

    def log_tail(self, lines: int = 20) -> str:
        path = self.data_dir / "vigil.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def _wait_routers(url: str, count: int, timeout_s: float) -> None:
    connection = await nats.connect(url)
    try:
        jetstream = connection.jetstream()
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            # each router keeps one pull request waiting while it has nothing to do
            info = await jetstream.consumer_info(records_stream(0), ROUTER_CONSUMER)
            seen += (info.num_waiting or 0) >= count
            if seen >= 3:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{count} routers did not start in {timeout_s}s")
    finally:
        await connection.close()


class BaselineProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def logs_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "baseline.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "bench" / "baseline_receiver.py"),
                "--port",
                str(self.port),
                "--db",
                str(self.data_dir / "baseline.db"),
            ],
            cwd=self.data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        # No readiness route: any HTTP answer on /v1/logs (405 to a GET) means it is listening.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.logs_url, timeout=2)
                return
            time.sleep(0.1)
        raise RuntimeError("the baseline receiver did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
