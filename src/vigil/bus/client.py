"""A connection to JetStream with Vigil's topology, and publishing with Vigil's error semantics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError

from vigil.bus.publications import Publications
from vigil.bus.pull import PullStream
from vigil.bus.topology import CONFIG_SUBJECT, RECORDS_STREAM, ConsumerSpec, Topology
from vigil.errors import Backpressure, MessageTooLarge, TransientError
from vigil.masking import mask_url
from vigil.settings import BusSettings

log = logging.getLogger(__name__)

# JetStream error codes that mean "over a limit": the client should slow down, not give up.
_LIMIT_ERROR_CODES = {10077, 10047, 10028, 10023, 10027}
_MESSAGE_TOO_LARGE = 10054
"""The message is larger than the stream's max_msg_size: no retry will change that."""
_BAD_REQUEST = 10003
"""What a nats-server before 2.11 answers a stream step-down that names a preferred leader."""
_NO_PEERS = 10005
"""No suitable peers, or (on a step-down) the preferred peer already leads."""
_CLUSTER_NOT_READY = {_NO_PEERS, 10008}
"""No suitable peers for placement (yet); JetStream cluster temporarily unavailable."""
_SEEN_WITHIN_NS = 3_000_000_000
"""A follower its leader has not heard from for this long may be gone (a killed node stays
`current` for a few seconds): no leadership is handed to it."""

Headers = dict[str, str]


@dataclass(frozen=True)
class NatsCredentials:
    """Credentials kept apart from the URL (which may carry a user and password, or a token)."""

    creds_file: Path | None = None
    """A NATS .creds file: a user JWT and its nkey seed."""
    nkey_seed_file: Path | None = None


def to_vigil_error(exc: Exception) -> Exception:
    if isinstance(exc, MaxPayloadError) or (isinstance(exc, APIError) and exc.err_code == _MESSAGE_TOO_LARGE):
        return MessageTooLarge(f"the bus refused a message as too large: {exc}")
    if isinstance(exc, APIError):
        if exc.err_code in _LIMIT_ERROR_CODES or "maximum" in (exc.description or ""):
            return Backpressure(f"the bus is over its limit: {exc.description}", retry_after=2.0)
        return TransientError(f"the bus refused the message: {exc.description}", retry_after=1.0)
    if isinstance(exc, NoStreamResponseError | NoRespondersError | NatsTimeout | asyncio.TimeoutError):
        return TransientError("the bus did not confirm the write in time", retry_after=1.0)
    return exc


class Bus:
    def __init__(
        self,
        url: str,
        settings: BusSettings,
        *,
        name: str = "vigil",
        credentials: NatsCredentials | None = None,
    ) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        self._credentials = credentials or NatsCredentials()
        self.settings = settings
        self.topology = Topology(settings)
        self._name = name
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._publications: Publications | None = None
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
        creds = self._credentials
        self._nc = await nats.connect(
            servers=[one.strip() for one in self.url.split(",")],
            user_credentials=str(creds.creds_file) if creds.creds_file is not None else None,
            nkeys_seed=str(creds.nkey_seed_file) if creds.nkey_seed_file is not None else None,
            name=self._name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            pending_size=256 * 1024 * 1024,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnect,
            reconnected_cb=self._on_reconnect,
        )
        self._js = self._nc.jetstream(timeout=10.0)
        self._publications = Publications(self._nc)
        await self._publications.start()
        await self.ensure_streams()

    async def shutdown(self) -> None:
        nc, self._nc = self._nc, None
        publications, self._publications = self._publications, None
        if publications is not None:
            publications.close()
        if nc is not None and not nc.is_closed:
            # Every component has settled its messages by now; a drain would only wait out idle
            # pull subscriptions.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.flush(), timeout=5)
            await nc.close()

    async def ensure_streams(self) -> None:
        for config in self.topology.streams():
            await self._ensure_stream(config)
        for spec in self.topology.router_consumers():
            await self.ensure_consumer(spec)
        await self.ensure_consumer(self.topology.sink_router_consumer())
        await self.ensure_consumer(self.topology.detector_consumer())
        await self._warn_of_dropped_partitions()
        await self.spread_leaders()

    async def _warn_of_dropped_partitions(self) -> None:
        """Records partitions beyond `records_partitions` are read by nobody: say so loudly."""
        wanted = set(self.topology.records_streams())
        try:
            infos = await self.js.streams_info()
        except Exception as exc:
            log.debug("streams not listed", extra={"error": str(exc)})
            return
        for info in infos:
            name = info.config.name or ""
            if name.startswith(f"{RECORDS_STREAM}_") and name not in wanted and info.state.messages:
                log.error(
                    "a records partition beyond records_partitions holds messages nobody reads; "
                    "raise records_partitions again until it is drained",
                    extra={"stream": name, "messages": info.state.messages},
                )

    async def spread_leaders(self, *, moves: int = 3) -> int:
        """On a cluster, give the records partitions' leaders to different nodes: where a node
        leads two partitions while another current peer leads none, ask one of them to step down
        in favour of that peer (at most `moves` times). Never raises; returns the moves made."""
        if self.settings.replicas < 2 or self.topology.records_partitions < 2:
            return 0
        moved = 0
        try:
            for _ in range(moves):
                leaders, peers = await self._records_leaders()
                plan = plan_leader_move(leaders, peers)
                if plan is None:
                    break
                stream, node = plan
                leader = leaders[stream]
                assert leader is not None
                log.info(
                    "moving a records partition's leader",
                    extra={"stream": stream, "from": leader, "to": node},
                )
                if not await self._step_down(stream, node, leader):
                    break
                moved += 1
        except Exception as exc:
            log.warning("records partition leaders not spread", extra={"error": repr(exc)})
        return moved

    async def _records_leaders(self) -> tuple[dict[str, str | None], dict[str, set[str]]]:
        leaders: dict[str, str | None] = {}
        peers: dict[str, set[str]] = {}
        for stream in self.topology.records_streams():
            cluster = (await self.js.stream_info(stream)).cluster
            if cluster is None:
                leaders[stream], peers[stream] = None, set()
                continue
            leaders[stream] = cluster.leader
            peers[stream] = {
                peer.name
                for peer in cluster.replicas or []
                if peer.name
                and peer.current
                and not peer.offline
                and peer.active is not None
                and peer.active < _SEEN_WITHIN_NS
            }
        return leaders, peers

    async def _step_down(self, stream: str, node: str, leader: str) -> bool:
        """Ask `stream`'s leader to step down in favour of `node`; True once another node leads."""
        subject = f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}"
        preferred = json.dumps({"placement": {"preferred": node}}).encode()
        error = _api_error(await self.nc.request(subject, preferred, timeout=5))
        if error is not None and error.get("err_code") == _BAD_REQUEST:
            # An older server elects among the followers at random; the next round corrects it.
            error = _api_error(await self.nc.request(subject, b"", timeout=5))
        if error is not None and error.get("err_code") == _NO_PEERS and "already leader" in str(error):
            return True  # another process moved it there meanwhile
        if error is not None:
            log.warning("leader step-down refused", extra={"stream": stream, "error": error})
            return False
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            with contextlib.suppress(Exception):
                cluster = (await self.js.stream_info(stream)).cluster
                if cluster is not None and cluster.leader not in (None, leader):
                    return True
        log.warning("no new leader after a step-down", extra={"stream": stream})
        return False

    async def _ensure_stream(self, config: StreamConfig) -> None:
        assert config.name is not None
        try:
            await self.js.stream_info(config.name)
        except NotFoundError:
            await self._add_stream(config)
            return
        try:
            await self.js.update_stream(config)
        except BadRequestError as exc:
            log.warning(
                "stream settings could not be updated", extra={"stream": config.name, "error": str(exc)}
            )

    async def _add_stream(self, config: StreamConfig) -> None:
        """A cluster that has just formed may not know every peer yet ("no suitable peers for
        placement"): wait a little for it rather than fail the start."""
        deadline = time.monotonic() + 20.0
        while True:
            try:
                await self.js.add_stream(config)
                return
            except APIError as exc:
                if exc.err_code not in _CLUSTER_NOT_READY or time.monotonic() > deadline:
                    raise
                log.warning(
                    "the bus cannot place the stream yet; retrying",
                    extra={"stream": config.name, "error": exc.description},
                )
                await asyncio.sleep(0.5)

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
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str,
        headers: Headers | None = None,
        ack_timeout_s: float | None = None,
    ) -> None:
        """Publish and wait (`ack_timeout_s`, default 10 s) for the bus's acknowledgement."""
        try:
            future = await self.publication(
                subject, payload, msg_id=msg_id, headers=headers, ack_timeout_s=ack_timeout_s
            )
            await future
        except Exception as exc:
            raise to_vigil_error(exc) from exc

    async def publication(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str,
        headers: Headers | None = None,
        ack_timeout_s: float | None = None,
    ) -> asyncio.Future[None]:
        """Publish; the future resolves once the bus has stored the message (JetStream keeps
        one copy per `msg_id`), or fails (see `to_vigil_error`) when it refuses it or does not
        answer within `ack_timeout_s` (default 10 s). For a caller that has other work to do
        meanwhile: no task or timer of its own per message (see `Publications`)."""
        if self._publications is None:
            raise RuntimeError("bus is not connected")
        hdrs = {"Nats-Msg-Id": msg_id, **headers} if headers else {"Nats-Msg-Id": msg_id}
        return await self._publications.send(subject, payload, hdrs, ack_timeout_s or 10.0)

    async def publish_many(
        self, messages: Sequence[tuple[str, bytes, str, Headers | None]], *, ack_timeout_s: float = 10.0
    ) -> None:
        """Publish without waiting for each ack in turn, then wait (up to `ack_timeout_s`) for all."""
        futures: list[asyncio.Future[None]] = []
        try:
            for subject, payload, msg_id, headers in messages:
                futures.append(
                    await self.publication(
                        subject, payload, msg_id=msg_id, headers=headers, ack_timeout_s=ack_timeout_s
                    )
                )
            for future in futures:
                await future
        except Exception as exc:
            for future in futures:
                if not future.cancel() and not future.cancelled():
                    future.exception()  # retrieved: not reported as never retrieved
            raise to_vigil_error(exc) from exc

    async def pull(self, spec: ConsumerSpec) -> JetStreamContext.PullSubscription:
        await self.ensure_consumer(spec)
        return await self.js.pull_subscribe_bind(durable=spec.name, stream=spec.stream)

    async def pull_stream(self, spec: ConsumerSpec) -> PullStream:
        """The consumer's messages as they arrive (see `PullStream`), for a worker with slots."""
        await self.ensure_consumer(spec)
        stream = PullStream(self.nc, spec.stream, spec.name)
        await stream.start()
        return stream

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
        log.warning("bus disconnected", extra={"url": self.masked_url})

    async def _on_reconnect(self) -> None:
        log.info("bus reconnected", extra={"url": self.masked_url})


def next_fetch(previous: Sequence[Msg], most: int) -> tuple[int, float]:
    """How many messages the next pull should ask for and how long it may wait, given what the
    previous pull returned.

    With a backlog (the last message says more are pending): `most`, waiting at most 0.1 s. A
    pull waits for all it asked for until its timeout, and while the consumer's window of
    unacknowledged messages is full, the rest only come as the messages the caller holds, which
    it cannot route while it waits, are acknowledged: a long wait would cap the rate at one
    window per wait.

    Without one: a single message, waiting up to a second. A pull for one is a single lingering
    request; a pull for more first probes with a request the server answers "no messages" when
    idle, which doubles the bus traffic per message."""
    if previous and _pending_after(previous[-1]):
        return most, 0.1
    return 1, 1.0


def _pending_after(msg: Msg) -> bool:
    try:
        return msg.metadata.num_pending > 0
    except Exception:  # not a JetStream message: assume a backlog, as before
        return True


def _api_error(reply: Msg) -> dict[str, object] | None:
    error: dict[str, object] | None = json.loads(reply.data or b"{}").get("error")
    return error


def plan_leader_move(
    leaders: Mapping[str, str | None], peers: Mapping[str, Collection[str]]
) -> tuple[str, str] | None:
    """The next step towards leaders on different nodes: (stream, node) where the stream's leader
    leads another stream too and `node`, one of the stream's current followers, leads none; None
    when there is no such step or while some stream has no leader (an election is under way).

    `leaders`: stream -> its leader's node; `peers`: stream -> its current followers' nodes."""
    if not leaders or any(leader is None for leader in leaders.values()):
        return None
    load = Counter(leaders.values())
    nodes = set(load).union(*peers.values())
    idle = sorted(node for node in nodes if node is not None and load[node] == 0)
    if not idle:
        return None
    # the last partitions move first: partition 0 keeps its leader where it can
    for stream in reversed(list(leaders)):
        if load[leaders[stream]] < 2:
            continue
        for node in idle:
            if node in peers.get(stream, ()):
                return stream, node
    return None
