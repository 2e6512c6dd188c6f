"""Admission control at the edge: an export is taken only while Vigil can hold what it costs and
answer it soon.

Two bounds, both answered with 429 and `Retry-After` (which OTLP exporters honour):

- Memory: each export claims the bytes it really makes Vigil hold, as they appear: the body as it
  is read, the decompressed bytes as they are inflated, and an estimate of the decoded message.
  The sum over exports in progress stays under `max_inflight_bytes`, so a burst of small gzip
  bodies that unpack large cannot grow the process.
- Delay: a CPU-saturated receiver that queues every export answers them all late, past the
  exporters' timeouts, and their retries add to the queue. Instead, the number of exports in
  progress is capped by a limit that adapts (additive increase, multiplicative decrease) to keep
  their time to an answer under `target_delay_s`, and to keep the event loop's own lag under it.
  Exports over the limit are refused at once, which costs almost nothing.

The loop's lag is sampled every `SAMPLE_EVERY_S` while exports arrive. Once none has come for
`IDLE_AFTER_S`, every `IDLE_SAMPLE_EVERY_S` (an idle process should hardly wake), and the next
export to arrive restores the fast rate at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import Gauge
from pydantic import BaseModel, Field

from vigil.errors import Backpressure
from vigil.tasks import cancel_and_wait

log = logging.getLogger(__name__)

INFLIGHT_BYTES = Gauge("vigil_ingest_inflight_bytes", "Bytes held by exports in progress.")
CONCURRENCY_LIMIT = Gauge("vigil_ingest_concurrency_limit", "Exports admitted at once (adaptive).")
LOOP_LAG = Gauge("vigil_event_loop_lag_seconds", "How late the receivers' event loop runs a timer.")

JSON_DECODE_FACTOR = 8
"""Python objects made from OTLP/JSON take several times the text's size while it is parsed."""
PROTOBUF_DECODE_FACTOR = 2
"""The parsed message and the bus messages cut from it."""
SAMPLE_EVERY_S = 0.05
IDLE_AFTER_S = 5.0
IDLE_SAMPLE_EVERY_S = 1.0


class AdmissionSettings(BaseModel):
    """When the receivers refuse exports with 429 rather than queue them."""

    target_delay_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Exports are admitted so that their answers come within about this long; "
        "well under the OTLP exporters' 10 s timeout.",
    )
    initial_concurrency: int = Field(default=64, ge=1, le=100_000)
    min_concurrency: int = Field(default=4, ge=1, le=100_000)
    max_concurrency: int = Field(default=1024, ge=1, le=100_000)
    adjust_every_s: float = Field(default=0.25, gt=0, le=60, description="How often the limit adapts.")


class Pressure:
    """Whether the receivers in this process answer late. Work that can wait (routing records
    already safe on the bus) then leaves them the event loop, so that exporters get their answers
    in time and the backlog waits on the bus instead of in their queues."""

    def __init__(self) -> None:
        self._until = 0.0

    def hold_for(self, seconds: float) -> None:
        self._until = max(self._until, time.monotonic() + seconds)

    @property
    def high(self) -> bool:
        return time.monotonic() < self._until


class MemoryClaim:
    """The bytes one export holds; given back whole when it ends."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.bytes = 0

    def take(self, size: int) -> None:
        self._admission.take(size)
        self.bytes += size

    def release(self) -> None:
        self._admission.give_back(self.bytes)
        self.bytes = 0


@dataclass
class _Window:
    started: float
    slow: int = 0
    answered: int = 0
    peak_inflight: int = 0


class Admission:
    def __init__(
        self,
        settings: AdmissionSettings,
        *,
        max_inflight_bytes: int,
        pressure: Pressure | None = None,
        sample_every_s: float = SAMPLE_EVERY_S,
        idle_after_s: float = IDLE_AFTER_S,
        idle_sample_every_s: float = IDLE_SAMPLE_EVERY_S,
    ) -> None:
        self._settings = settings
        self._sample_every_s = sample_every_s
        self._idle_after_s = idle_after_s
        self._idle_sample_every_s = idle_sample_every_s
        self._last_arrival = -idle_after_s
        self._arrival: asyncio.Future[bool] | None = None
        """Set while the sampler waits at the idle rate: the next export wakes it."""
        self.pressure = pressure or Pressure()
        self._max_bytes = max_inflight_bytes
        self.inflight_bytes = 0
        self.inflight = 0
        self.limit = float(
            min(max(settings.initial_concurrency, settings.min_concurrency), settings.max_concurrency)
        )
        self.loop_lag_s = 0.0
        self.samples = 0
        """Of the loop's lag, since start."""
        self._window = _Window(time.monotonic())
        self._sampler: asyncio.Task[None] | None = None
        CONCURRENCY_LIMIT.set(self.limit)

    async def start(self) -> None:
        if self._sampler is None:
            self._sampler = asyncio.create_task(self._sample_loop_lag(), name="admission-loop-lag")

    async def shutdown(self) -> None:
        task, self._sampler = self._sampler, None
        await cancel_and_wait(task)

    def take(self, size: int) -> None:
        if self.inflight_bytes + size > self._max_bytes:
            raise Backpressure("ingest is over its memory limit; retry later", retry_after=1.0)
        self.inflight_bytes += size
        INFLIGHT_BYTES.set(self.inflight_bytes)

    def give_back(self, size: int) -> None:
        self.inflight_bytes -= size
        INFLIGHT_BYTES.set(self.inflight_bytes)

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[MemoryClaim]:
        """Hold one place among the exports in progress, or refuse at once."""
        started = time.monotonic()
        self._last_arrival = started
        arrival = self._arrival
        if arrival is not None and not arrival.done():
            arrival.set_result(True)
        if self.inflight >= int(self.limit) or self.loop_lag_s > self._settings.target_delay_s:
            raise Backpressure("ingest is saturated; retry later", retry_after=1.0)
        self.inflight += 1
        window = self._window
        window.peak_inflight = max(window.peak_inflight, self.inflight)
        claim = MemoryClaim(self)
        try:
            yield claim
        finally:
            claim.release()
            self.inflight -= 1
            self._answered(time.monotonic() - started)

    def _answered(self, elapsed_s: float) -> None:
        window = self._window
        window.answered += 1
        if elapsed_s > self._settings.target_delay_s * 0.5:
            window.slow += 1
        now = time.monotonic()
        if now - window.started >= self._settings.adjust_every_s:
            self._adjust(window)
            self._window = _Window(now)

    def _adjust(self, window: _Window) -> None:
        s = self._settings
        if window.slow * 10 > window.answered or self.loop_lag_s > s.target_delay_s * 0.5:
            # more than a tenth answered late: fewer at once drains the queue
            self.limit = max(float(s.min_concurrency), self.limit * 0.8)
            self.pressure.hold_for(s.adjust_every_s * 4)
        elif window.peak_inflight >= int(self.limit):
            self.limit = min(float(s.max_concurrency), self.limit + max(1.0, self.limit * 0.05))
        CONCURRENCY_LIMIT.set(self.limit)

    @property
    def sampling_idle(self) -> bool:
        """Whether the loop's lag is sampled at the idle rate (no export for a while)."""
        return not self.inflight and time.monotonic() - self._last_arrival >= self._idle_after_s

    async def _sample_loop_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.sampling_idle:
                expected = loop.time() + self._idle_sample_every_s
                if await self._idle_wait(loop):
                    continue  # an export arrived: sample at the fast rate from now
            else:
                expected = loop.time() + self._sample_every_s
                await asyncio.sleep(self._sample_every_s)
            lag = max(0.0, loop.time() - expected)
            self.samples += 1
            # rises at once, decays over a few samples: one long stall is reacted to quickly
            self.loop_lag_s = lag if lag > self.loop_lag_s else self.loop_lag_s * 0.7 + lag * 0.3
            LOOP_LAG.set(self.loop_lag_s)
            if self.inflight and self.loop_lag_s > self._settings.target_delay_s * 0.1:
                self.pressure.hold_for(self._settings.adjust_every_s * 4)

    async def _idle_wait(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait the idle period or until an export arrives (True); a future and a timer rather
        than `wait_for` on an event, which would make a task per wait."""
        arrival: asyncio.Future[bool] = loop.create_future()
        self._arrival = arrival
        timer = loop.call_later(self._idle_sample_every_s, _resolve, arrival)
        try:
            return await arrival
        finally:
            timer.cancel()
            self._arrival = None


def _resolve(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)
