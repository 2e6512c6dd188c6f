"""A real three-node NATS JetStream cluster on loopback, for tests that run Vigil's services
against it and kill nodes.

Each node has its own client, cluster (route) and monitoring port and its own store directory;
`start()` returns once every node is up, routed to the others, and agrees on a JetStream meta
leader. Use it as a context manager (sync or async), or call `start()` and `stop()`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from tests.process import free_port

CLUSTER_NAME = "vigil-test"


def nats_server_binary() -> Path:
    return Path(sys.executable).parent / "nats-server"


@dataclass
class NatsNode:
    name: str
    dir: Path
    client_port: int
    cluster_port: int
    monitor_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def config(self, routes: list[str]) -> str:
        store = json.dumps(str(self.dir / "store"))
        route_list = ", ".join(json.dumps(r) for r in routes)
        return (
            f"server_name: {self.name}\n"
            f"host: 127.0.0.1\nport: {self.client_port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            "max_payload: 2MB\n"
            f"jetstream {{\n  store_dir: {store}\n  max_memory_store: 256MB\n  max_file_store: 20GB\n}}\n"
            f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{self.cluster_port}\n"
            f"  routes: [{route_list}]\n}}\n"
        )


class NatsCluster:
    def __init__(self, base_dir: Path, size: int = 3) -> None:
        if not nats_server_binary().exists():
            raise RuntimeError(f"nats-server not found at {nats_server_binary()}")
        self.base_dir = base_dir
        self.nodes = [
            NatsNode(f"n{i + 1}", base_dir / f"n{i + 1}", free_port(), free_port(), free_port())
            for i in range(size)
        ]

    @property
    def urls(self) -> str:
        """Every node's client URL, comma-separated, as VIGIL_NATS_URL takes them."""
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        for node in self.nodes:
            self._launch(node)
        self.wait_ready(timeout_s)

    def _launch(self, node: NatsNode) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        routes = [f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes if n is not node]
        conf = node.dir / "nats.conf"
        conf.write_text(node.config(routes))
        with (node.dir / "nats-server.log").open("ab") as log:
            node.process = subprocess.Popen(
                [str(nats_server_binary()), "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def restart(self, name: str, timeout_s: float = 30.0) -> None:
        """Start a killed node again on the same ports and store."""
        node = self.node(name)
        if node.running:
            raise RuntimeError(f"{name} is running")
        self._launch(node)
        self.wait_ready(timeout_s)

    def kill(self, name: str) -> None:
        """`kill -9` of one node."""
        node = self.node(name)
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait()

    def stop(self) -> None:
        for node in self.nodes:
            if node.running:
                assert node.process is not None
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                try:
                    node.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()

    # --- inspection --------------------------------------------------------------------------

    def jsz(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.node(name).monitor_url}/jsz", timeout=2).json()
        return result

    def meta_leader(self) -> str | None:
        """The meta leader every running node agrees on, or None."""
        leaders: set[str | None] = set()
        for node in self.nodes:
            if not node.running:
                continue
            try:
                meta = self.jsz(node.name).get("meta_cluster") or {}
            except (httpx.HTTPError, ValueError):
                return None
            leaders.add(meta.get("leader") or None)
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        return leader if leader in {n.name for n in self.nodes if n.running} else None

    def stream_leader(self, stream: str) -> str | None:
        for node in self.nodes:
            if not node.running:
                continue
            try:
                data = httpx.get(f"{node.monitor_url}/jsz?streams=true", timeout=2).json()
            except (httpx.HTTPError, ValueError):
                continue
            for account in data.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        leader: str | None = (detail.get("cluster") or {}).get("leader")
                        if leader:
                            return leader
        return None

    def client_node(self, connection_name: str) -> str | None:
        """The node a client (by its connection name) is connected to."""
        for node in self.nodes:
            if not node.running:
                continue
            try:
                conns = httpx.get(f"{node.monitor_url}/connz", timeout=2).json().get("connections") or []
            except (httpx.HTTPError, ValueError):
                continue
            if any(c.get("name") == connection_name for c in conns):
                return node.name
        return None

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until every running node answers, is routed to every other running node, and all agree
        on a JetStream meta leader."""
        running = [n for n in self.nodes if n.running]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None and node in running:
                    log = (node.dir / "nats-server.log").read_text()[-3000:]
                    raise RuntimeError(f"nats-server {node.name} exited: {log}")
            try:
                routed = all(
                    httpx.get(f"{n.monitor_url}/routez", timeout=1).json().get("num_routes", 0)
                    >= len(running) - 1
                    for n in running
                )
            except (httpx.HTTPError, ValueError):
                routed = False
            if routed and self.meta_leader() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("the NATS cluster did not elect a JetStream meta leader in time")

    # --- context managers --------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        try:
            await asyncio.to_thread(self.start)
        except BaseException:
            await asyncio.to_thread(self.stop)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
