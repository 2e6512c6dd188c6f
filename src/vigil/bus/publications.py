"""JetStream publications whose acknowledgements come to one inbox subscription.

`nc.request` per publication costs, besides the message itself, a random token (a `getrandom`
system call), a done callback, and `wait_for`'s own future, timer and callbacks. Here a
publication is a message with a reply subject under a shared inbox, a counter for its token, and
an entry in a dict of futures; one timer, armed for the earliest deadline, fails the publications
whose acknowledgement did not come in time (the caller publishes again, under the same message
id, and JetStream keeps one copy).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError

_NO_RESPONDERS = "503"


class Publications:
    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._prefix = f"{nc.new_inbox()}."
        self._count = 0
        self._waiting: dict[str, tuple[asyncio.Future[None], float]] = {}
        """By token: the publication's future and the loop time it is given up at."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    async def start(self) -> None:
        await self._nc.subscribe(f"{self._prefix}*", cb=self._on_reply)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def send(
        self, subject: str, payload: bytes, headers: dict[str, str], timeout_s: float
    ) -> asyncio.Future[None]:
        """Publish; the future resolves when the bus has stored the message, or fails with the
        bus's `APIError`, `NoRespondersError`, or a nats `TimeoutError` after `timeout_s`."""
        loop = asyncio.get_running_loop()
        self._count += 1
        token = str(self._count)
        future: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + timeout_s
        self._waiting[token] = (future, deadline)
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except BaseException:
            self._waiting.pop(token, None)
            raise
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)
        return future

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.get_running_loop().call_at(at, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        earliest = None
        for token, (future, deadline) in list(self._waiting.items()):
            if future.done():
                del self._waiting[token]  # given up by its caller
            elif deadline <= now:
                del self._waiting[token]
                future.set_exception(NatsTimeout())
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self._arm(earliest)

    async def _on_reply(self, msg: Msg) -> None:
        entry = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if entry is None or entry[0].done():
            return
        future = entry[0]
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            future.set_exception(NoRespondersError())
            return
        try:
            answer = orjson.loads(msg.data)
            error = answer.get("error") if isinstance(answer, dict) else None
        except orjson.JSONDecodeError as exc:
            future.set_exception(exc)
            return
        if error is None:
            future.set_result(None)
            return
        try:
            APIError.from_error(error)  # raises the error's own class
        except APIError as exc:
            future.set_exception(exc)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for future, _ in self._waiting.values():
            with contextlib.suppress(asyncio.InvalidStateError):
                future.cancel()
        self._waiting.clear()
