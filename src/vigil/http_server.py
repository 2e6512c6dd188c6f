"""An ASGI app served by uvicorn as a component with start/shutdown, several to a process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn


class _QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The runtime owns the process's signals; several servers share one process.
        yield

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        """uvicorn's own loop ticks ten times a second, to refresh the Date header (once a second)
        and to see `should_exit`: each tick wakes an idle process, which costs more CPU than the
        tick's work. Here it ticks once a second, and `exit` ends it at once."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)


class HttpServer:
    def __init__(
        self, app: Any, *, host: str, port: int, name: str, limit_concurrency: int | None = None
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self.name = name
        self._limit_concurrency = limit_concurrency
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int = port

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets it knows are TCP, and
        # without it every small answer waits out Nagle and delayed ACK (about 40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise RuntimeError(
                f"{self.name}: cannot listen on {self._host}:{self._port}: {exc.strerror}"
            ) from exc
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            limit_concurrency=self._limit_concurrency,
            timeout_graceful_shutdown=10,
            # Longer than clients keep idle connections (httpx 5 s, aiohttp 15 s, Go's transport,
            # as Alertmanager and the Collector use it, 90 s): a server that closes an idle
            # connection races the client's next request on it, which fails without an answer.
            timeout_keep_alive=100,
            backlog=2048,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"http-{self.name}")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self.name}: server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.exit()

    async def shutdown(self) -> None:
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.exit()
        with contextlib.suppress(asyncio.CancelledError):
            await task
