"""Running a synchronous client library (PyGithub, python-gitlab, jira) without blocking the event loop.

Each call runs in a worker thread of the system's own small pool under a deadline, so a tracker
that hangs holds at most `WORKERS` threads and never the event loop's default pool. The client is
built lazily in the thread too, since building one may already talk to the server (the `jira`
package asks for `serverInfo`).
A call that misses its deadline is reported as retryable while its thread finishes on its own: the
client's own request timeout ends it soon after, and idempotent `open` makes the retry safe.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import requests

from vigil.errors import TicketError
from vigil.tickets.base import error_for_status

WORKERS = 4
"""Calls in flight per ticket system; more wait their turn (within their deadline)."""

Client = TypeVar("Client")
Result = TypeVar("Result")

Classify = Callable[[Exception, str], TicketError | None]
"""The library's error as a `TicketError` for an operation (`what`), or None when not the library's."""


class BlockingClient(Generic[Client]):
    def __init__(
        self,
        system: str,
        connect: Callable[[], Client],
        classify: Classify,
        timeout_s: float,
        disconnect: Callable[[Client], None] = lambda client: None,
    ) -> None:
        self.system = system
        self.timeout_s = timeout_s
        self._connect = connect
        self._classify = classify
        self._disconnect = disconnect
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _get(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _call(self, fn: Callable[[Client], Result]) -> Result:
        return fn(self._get())

    async def run(self, what: str, fn: Callable[[Client], Result]) -> Result:
        """`fn(client)` in a thread; its errors as `TicketError` naming `what` was being done."""
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"tickets-{self.system}")
                return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)
        except TimeoutError:
            raise TicketError(
                f"{self.system} {what}: no answer within {self.timeout_s:g}s",
                retryable=True,
                system=self.system,
            ) from None
        except TicketError:
            raise
        except Exception as exc:
            error = self._classify(exc, what) or _transport_error(self.system, exc, what)
            if error is None:
                raise
            # Never chained: some libraries' errors print the request headers, token included.
            raise error from None

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)  # a call past its deadline ends on its own
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(self._disconnect, client)


def _transport_error(system: str, exc: Exception, what: str) -> TicketError | None:
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return TicketError(f"{system} {what}: {type(exc).__name__}", retryable=False, system=system)
    if isinstance(exc, requests.RequestException):
        # The message names the host and the reason; requests keeps headers out of it.
        return error_for_status(system, what, None, f"{type(exc).__name__}: {exc}")
    return None
