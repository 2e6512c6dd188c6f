"""A connection to JetStream with Vigil's topology, and publishing with Vigil's error semantics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError

from vigil.bus.topology import CONFIG_SUBJECT, ConsumerSpec, Topology
from vigil.errors import Backpressure, TransientError
from vigil.settings import BusSettings

log = logging.getLogger(__name__)

# JetStream error codes that mean "over a limit": the client should slow down, not give up.
_LIMIT_ERROR_CODES = {10077, 10047, 10028, 10023, 10027}

Headers = dict[str, str]


def to_vigil_error(exc: Exception) -> Exception:
    if isinstance(exc, APIError):
        if exc.err_code in _LIMIT_ERROR_CODES or "maximum" in (exc.description or ""):
            return Backpressure(f"the bus is over its limit: {exc.description}", retry_after=2.0)
        return TransientError(f"the bus refused the message: {exc.description}", retry_after=1.0)
    if isinstance(exc, NoStreamResponseError | NoRespondersError | NatsTimeout | asyncio.TimeoutError):
        return TransientError("the bus did not confirm the write in time", retry_after=1.0)
    return exc


class Bus:
    def __init__(self, url: str, settings: BusSettings, *, name: str = "vigil") -> None:
        self.url = url
        self.settings = settings
        self.topology = Topology(settings)
        self._name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._known_consumers: set[tuple[str, str]] = set()

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("bus is not connected")
        return self._js

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RuntimeError("bus is not connected")
        return self._nc

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        self._nc = await nats.connect(
            servers=self.url.split(","),
            name=self._name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            pending_size=256 * 1024 * 1024,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnect,
            reconnected_cb=self._on_reconnect,
        )
        self._js = self._nc.jetstream(timeout=10.0, publish_async_max_pending=4000)
        await self.ensure_streams()

    async def shutdown(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            # Every component has settled its messages by now; a drain would only wait out idle
            # pull subscriptions.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.flush(), timeout=5)
            await nc.close()

    async def ensure_streams(self) -> None:
        for config in self.topology.streams():
            await self._ensure_stream(config)
        await self.ensure_consumer(self.topology.router_consumer())
        await self.ensure_consumer(self.topology.sink_router_consumer())
        await self.ensure_consumer(self.topology.detector_consumer())

    async def _ensure_stream(self, config: StreamConfig) -> None:
        assert config.name is not None
        try:
            await self.js.stream_info(config.name)
        except NotFoundError:
            await self.js.add_stream(config)
            return
        try:
            await self.js.update_stream(config)
        except BadRequestError as exc:
            log.warning(
                "stream settings could not be updated", extra={"stream": config.name, "error": str(exc)}
            )

    async def ensure_consumer(self, spec: ConsumerSpec) -> None:
        """Create the durable consumer, or update it in place (JetStream's create is
        create-or-update); a change JetStream cannot apply keeps the old settings, with a warning."""
        key = (spec.stream, spec.name)
        if key in self._known_consumers:
            return
        try:
            await self.js.add_consumer(spec.stream, spec.config)
        except BadRequestError as exc:
            log.warning(
                "consumer settings could not be updated",
                extra={"consumer": spec.name, "error": exc.description},
            )
        self._known_consumers.add(key)

    async def delete_consumer(self, stream: str, name: str) -> None:
        self._known_consumers.discard((stream, name))
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(stream, name)

    async def publish(
        self, subject: str, payload: bytes, *, msg_id: str, headers: Headers | None = None
    ) -> PubAck:
        hdrs = {"Nats-Msg-Id": msg_id, **(headers or {})}
        try:
            return await self.js.publish(subject, payload, headers=hdrs)
        except Exception as exc:
            raise to_vigil_error(exc) from exc

    async def publish_many(self, messages: Sequence[tuple[str, bytes, str, Headers | None]]) -> None:
        """Publish without waiting for each ack in turn, then wait for all of them."""
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for subject, payload, msg_id, headers in messages:
                hdrs = {"Nats-Msg-Id": msg_id, **(headers or {})}
                futures.append(await self.js.publish_async(subject, payload, headers=hdrs, wait_stall=5.0))
            await asyncio.wait_for(asyncio.gather(*futures), timeout=10.0)
        except Exception as exc:
            for future in futures:
                future.cancel()
            raise to_vigil_error(exc) from exc

    async def pull(self, spec: ConsumerSpec) -> JetStreamContext.PullSubscription:
        await self.ensure_consumer(spec)
        return await self.js.pull_subscribe_bind(durable=spec.name, stream=spec.stream)

    async def announce_config_change(self, project_id: str) -> None:
        if self.connected:
            await self.nc.publish(CONFIG_SUBJECT, project_id.encode())

    async def on_config_change(self, callback: Callable[[str], Awaitable[None]]) -> None:
        async def handler(msg: Msg) -> None:
            await callback(msg.data.decode())

        await self.nc.subscribe(CONFIG_SUBJECT, cb=handler)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("bus error", extra={"error": repr(exc)})

    async def _on_disconnect(self) -> None:
        log.warning("bus disconnected", extra={"url": self.url})

    async def _on_reconnect(self) -> None:
        log.info("bus reconnected", extra={"url": self.url})
