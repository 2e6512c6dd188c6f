"""Admission control: the concurrency limit follows the time to an answer, memory claims are bounded."""

from __future__ import annotations

import asyncio
import time

import pytest

from vigil.errors import Backpressure
from vigil.receivers.admission import Admission, AdmissionSettings


def admission(**overrides: float) -> Admission:
    settings = AdmissionSettings(
        **{
            "target_delay_s": 0.2,
            "initial_concurrency": 8,
            "min_concurrency": 2,
            "adjust_every_s": 0.001,
            **overrides,
        }
    )
    return Admission(settings, max_inflight_bytes=1000)


async def export(gate: Admission, seconds: float) -> None:
    async with gate.admit():
        await asyncio.sleep(seconds)


async def test_late_answers_lower_the_limit_and_exports_over_it_are_refused_at_once() -> None:
    gate = admission()
    await asyncio.gather(*(export(gate, 0.15) for _ in range(8)))
    assert gate.limit < 8
    held = [asyncio.create_task(export(gate, 0.3)) for _ in range(int(gate.limit))]
    await asyncio.sleep(0.01)
    with pytest.raises(Backpressure) as refused:
        async with gate.admit():
            pass
    assert refused.value.status == 429 and refused.value.retry_after >= 1
    await asyncio.gather(*held)
    for _ in range(20):
        await asyncio.gather(*(export(gate, 0.15) for _ in range(int(gate.limit))))
    assert gate.limit == 2  # never below the floor


async def test_quick_answers_at_the_limit_raise_it() -> None:
    gate = admission(initial_concurrency=4)
    for _ in range(10):
        await asyncio.gather(*(export(gate, 0.001) for _ in range(int(gate.limit))))
    assert gate.limit > 4


async def test_quick_answers_below_the_limit_leave_it() -> None:
    gate = admission(initial_concurrency=8)
    for _ in range(10):
        await export(gate, 0.001)
    assert gate.limit == 8


async def test_memory_claims_are_bounded_and_given_back() -> None:
    gate = admission()
    async with gate.admit() as claim:
        claim.take(600)
        with pytest.raises(Backpressure):
            async with gate.admit() as other:
                other.take(500)
        assert gate.inflight_bytes == 600
    assert gate.inflight_bytes == 0 and gate.inflight == 0


async def test_a_stalled_event_loop_sheds_new_exports() -> None:
    gate = admission(target_delay_s=0.05)
    await gate.start()
    try:
        held = asyncio.create_task(export(gate, 1.0))  # under load: an export in progress
        await asyncio.sleep(0.06)

        time.sleep(0.3)  # noqa: ASYNC251 - the loop is stalled, as by a long synchronous step
        await asyncio.sleep(0.06)
        assert gate.loop_lag_s > 0.05
        with pytest.raises(Backpressure):
            async with gate.admit():
                pass
        held.cancel()
    finally:
        await gate.shutdown()


def idle_gate() -> Admission:
    """Idle after 50 ms without an export; then sampled only every 10 s."""
    settings = AdmissionSettings(target_delay_s=0.05, adjust_every_s=0.001)
    return Admission(settings, max_inflight_bytes=1000, idle_after_s=0.05, idle_sample_every_s=10.0)


async def test_an_idle_loop_is_sampled_rarely_and_an_export_makes_it_sampled_often_again() -> None:
    gate = idle_gate()
    await gate.start()
    try:
        await asyncio.sleep(0.3)
        assert gate.sampling_idle and gate.samples == 0
        held = asyncio.create_task(export(gate, 0.5))
        await asyncio.sleep(0.3)
        assert not gate.sampling_idle and gate.samples >= 4
        await held
        await asyncio.sleep(0.2)
        idle_since = gate.samples
        await asyncio.sleep(0.3)
        assert gate.sampling_idle and gate.samples == idle_since
    finally:
        await gate.shutdown()


async def test_a_stall_after_an_idle_spell_is_seen_at_the_fast_rate() -> None:
    gate = idle_gate()
    await gate.start()
    try:
        await asyncio.sleep(0.2)
        assert gate.sampling_idle
        held = asyncio.create_task(export(gate, 1.0))
        await asyncio.sleep(0.01)
        time.sleep(0.3)  # noqa: ASYNC251 - the loop is stalled, as by a long synchronous step
        await asyncio.sleep(0.06)
        assert gate.loop_lag_s > 0.05  # not 10 s later, at the idle rate
        with pytest.raises(Backpressure):
            async with gate.admit():
                pass
        held.cancel()
    finally:
        await gate.shutdown()
