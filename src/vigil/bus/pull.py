"""Messages of a durable pull consumer as they arrive, for a worker with a fixed number of slots.

`fetch` sends a pull request per call, and a request for several messages first probes with one
the server answers "no messages" when it has none: at a steady rate that is two requests and
three bus messages per message delivered. A `PullStream` instead keeps one request open for as
many messages as the worker has free slots (expiring after `expires_s`), and sends the next only
when that one is used up or over. Between requests, a message costs one message from the server
and its acknowledgement.

A message never arrives for a slot that is not free: a request asks for at most the free slots,
and each arrival takes one. A request the server ends (408 on expiry, 409 on a consumer change)
is replaced at once; one the client stops hearing from (a reconnection loses it) is given up a
second after it expired. Should a given-up request still deliver, the extra messages wait in the
stream's queue for a slot, inside their ack wait like any fetched message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

_STATUS = "Status"
_GIVE_UP_AFTER_S = 1.0
"""How long after its expiry a request that the server did not end is taken as lost."""


class PullStream:
    def __init__(self, nc: NatsClient, stream: str, consumer: str, *, expires_s: float = 5.0) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._expires_s = expires_s
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._expires_ns = int(expires_s * 1_000_000_000)
        self._arrived: deque[Msg] = deque()
        self._waiting = 0
        """Messages the open request may still bring (0: no request open)."""
        self._deadline = 0.0
        self._wakeup: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_message)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    @property
    def ready(self) -> bool:
        """Whether a message has arrived that `next` would return at once."""
        return bool(self._arrived)

    async def next(self, free: int) -> Msg:
        """The next message, for a worker that has `free` slots (this message's included)."""
        while not self._arrived:
            if self._waiting == 0 or time.monotonic() > self._deadline:
                await self._request(free)
            # a future, not `wait_for`, which makes a task per wait; the request's timer wakes
            # it should the request be lost
            self._wakeup = wakeup = asyncio.get_running_loop().create_future()
            try:
                await wakeup
            finally:
                self._wakeup = None
        return self._arrived.popleft()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _request(self, batch: int) -> None:
        payload = b'{"batch":%d,"expires":%d}' % (batch, self._expires_ns)
        self._waiting = batch
        self._deadline = time.monotonic() + self._expires_s + _GIVE_UP_AFTER_S
        if self._timer is not None:
            self._timer.cancel()
        # one timer per request, not one per wait: a wait outlasts the request only if it is lost
        self._timer = asyncio.get_running_loop().call_later(
            self._expires_s + _GIVE_UP_AFTER_S + 0.01, self._wake
        )
        await self._nc.publish(self._subject, payload, reply=self._inbox)

    async def _on_message(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._waiting = max(0, self._waiting - 1)
            self._arrived.append(msg)
        elif status != "100":  # not a heartbeat: the request is over (408 expired, 409 ...)
            self._waiting = 0
        self._wake()
