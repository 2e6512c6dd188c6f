"""Records after a first action wait while other workflows are on their way to theirs."""

from __future__ import annotations

import asyncio

from vigil.workflow.first_actions import FirstActions


async def test_a_record_waits_for_the_first_actions_still_to_come() -> None:
    first = FirstActions(defer_max_s=60, hold_s=60)
    await first.quiet()  # none pending: at once
    first.begin("wf-a")
    first.begin("wf-b")
    waiting = asyncio.create_task(first.quiet())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    first.done("wf-a")
    await asyncio.sleep(0.05)
    assert not waiting.done()
    first.done("wf-b")
    await asyncio.wait_for(waiting, 5)
    first.done("wf-b")  # again: harmless
    assert first.pending() == 0


async def test_a_record_waits_no_longer_than_its_bound() -> None:
    first = FirstActions(defer_max_s=0.1, hold_s=60)
    first.begin("wf-slow")
    await asyncio.wait_for(first.quiet(), 5)
    assert first.pending() == 1


async def test_a_workflow_that_never_runs_here_stops_counting() -> None:
    first = FirstActions(defer_max_s=60, hold_s=0.1)
    first.begin("wf-run-elsewhere")
    await asyncio.wait_for(first.quiet(), 5)
    assert first.pending() == 0
