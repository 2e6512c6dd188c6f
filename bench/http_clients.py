"""CPU per delivery of the HTTP clients Vigil could post batches with, on the same load.

A local agent (bench/agent.py's `RecordingAgent`, in its own process so its CPU is not counted)
takes batches of 10 flat records; each client posts `--requests` of them with `--concurrency`
in flight, the way a delivery worker does (one keep-alive pool, a timeout on the whole exchange,
the answer read). What is measured is this process's CPU time per request:

- httpx: `httpx.AsyncClient.stream` as `vigil.outbound.post` used it before;
- aiohttp: `aiohttp.ClientSession.post`, plainly used;
- vigil: `vigil.agents.http.HttpAgent.send` over `vigil.outbound.Outbound`, the path a delivered
  batch takes (`vigil.http1`, with the agent's headers, the outbound policy and the
  classification of the answer);
- minimal: the same exchange with nothing else (one `asyncio.Protocol` per connection, the
  request written in one call, httptools parsing the answer): the floor of what a client can
  cost here.

Usage::

    .venv/bin/python bench/http_clients.py [--requests 3000] [--concurrency 8] [--loop asyncio|uvloop]
        [--clients httpx,aiohttp,vigil,minimal] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httptools
import httpx
import orjson
import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from output import print_json
from servers import free_port

from vigil.agents.http import HttpAgent
from vigil.outbound import Outbound
from vigil.specs import AgentSpec

CLIENTS = ("httpx", "aiohttp", "vigil", "minimal")

AGENT = """
import asyncio, socket, sys, uvicorn
sys.path.insert(0, {bench!r})
from agent import RecordingAgent
agent = RecordingAgent()
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", {port}))
config = uvicorn.Config(agent, lifespan="off", log_level="warning", access_log=False)
asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
"""


def batch_body(records: int = 10) -> bytes:
    record = {
        "resourceAttributes": {
            "service.name": "svc-1",
            "host.name": "node-7",
            "deployment.environment": "prod",
        },
        "severityNumber": 9,
        "severityText": "INFO",
        "body": "GET /api/orders/1234 200 in 12 ms for user 77",
        "attributes": {"http.method": "GET", "http.route": "/api/orders/{id}", "http.status_code": 200},
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "timestamp": "2026-12-06T10:00:00.123Z",
        "template_id": "1f2e3d4c5b6a7988",
        "template": "GET <*> <*> in <*> for user <*>",
    }
    return orjson.dumps([record] * records)


HEADERS = {
    "Content-Type": "application/json",
    "X-Project-ID": "p-1",
    "X-Request-ID": "0123456789abcdef0123456789abcdef",
    "X-Vigil-Attempt": "1",
    "User-Agent": "vigil/0.1.0",
}


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.done is not None and not self.done.done():
            self.done.set_result(self.status)

    async def request(self, head: bytes, body: bytes) -> int:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(head + body)
        return await self.done


class MinimalClient:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._idle: list[_Connection] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._host}:{self._port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                break
        else:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(_Connection, self._host, self._port)
        async with asyncio.timeout(timeout_s):
            status = await connection.request(head, body)
        connection.parser = httptools.HttpResponseParser(connection)
        self._idle.append(connection)
        return status

    def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()


async def run_client(name: str, url: str, body: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    post: Callable[[], Awaitable[int]]
    close: Callable[[], Awaitable[None]]
    if name == "httpx":
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=512, max_keepalive_connections=128))

        async def post() -> int:
            async with (
                asyncio.timeout(10),
                client.stream("POST", url, content=body, headers=HEADERS, timeout=10) as response,
            ):
                async for _ in response.aiter_bytes():
                    pass
                return response.status_code

        close = client.aclose
    elif name == "aiohttp":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        timeout = aiohttp.ClientTimeout(total=10)

        async def post() -> int:
            async with session.post(url, data=body, headers=HEADERS, timeout=timeout) as response:
                await response.read()
                return response.status

        close = session.close
    elif name == "vigil":
        outbound = Outbound()
        spec = AgentSpec(endpoint=url, timeout_s=10, headers={"Authorization": "Bearer not-a-secret"})
        agent = HttpAgent(spec, outbound)

        async def post() -> int:
            await agent.send("p-1", "0123456789abcdef0123456789abcdef", body, 1)
            return 200

        close = outbound.aclose
    else:
        minimal = MinimalClient("127.0.0.1", int(url.split(":")[2].split("/")[0]))

        async def post() -> int:
            return await minimal.post("/process", body, HEADERS, 10)

        async def close() -> None:
            minimal.close()

    async def worker(count: int) -> None:
        for _ in range(count):
            status = await post()
            assert status == 200, status

    await worker(50)  # warm the pool
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await close()
    done = requests // concurrency * concurrency
    return {
        "client": name,
        "requests": done,
        "cpu_us_per_request": cpu / done * 1e6,
        "requests_per_s": done / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help="comma-separated, of " + ", ".join(CLIENTS)
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    clients = [name for name in args.clients.split(",") if name]
    if unknown := set(clients) - set(CLIENTS):
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    port = free_port()
    bench = os.path.dirname(os.path.abspath(__file__))
    agent = subprocess.Popen([sys.executable, "-c", AGENT.format(bench=bench, port=port)])
    url = f"http://127.0.0.1:{port}/process"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(url, content=b"[]", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = batch_body()
        results: list[dict[str, Any]] = []
        run = uvloop.run if args.loop == "uvloop" else asyncio.run
        # rounds alternate the clients so that a change in the machine's load hits them alike
        for _ in range(args.rounds):
            for name in clients:
                results.append(run(run_client(name, url, body, args.requests, args.concurrency)))
    finally:
        agent.terminate()
        agent.wait(10)
    best: dict[str, dict[str, Any]] = {}
    for result in results:
        kept = best.get(result["client"])
        if kept is None or result["cpu_us_per_request"] < kept["cpu_us_per_request"]:
            best[result["client"]] = result
    out = {
        "loop": args.loop,
        "concurrency": args.concurrency,
        "body_bytes": len(body),
        "clients": list(best.values()),
    }
    if args.json:
        print_json(out)
    else:
        for result in best.values():
            print(
                f"{result['client']:>8}: {result['cpu_us_per_request']:7.1f} µs CPU/request, "
                f"{result['requests_per_s']:7.0f} requests/s"
            )


if __name__ == "__main__":
    main()
