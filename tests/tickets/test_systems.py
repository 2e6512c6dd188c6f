"""The ticket contract, for each system against its double through the official client."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.tickets.conftest import TOKEN, Harness
from vigil.tickets import TicketDraft, TicketError, TicketRef

LATE_S = 1.5
"""Longer than the 1 s limit the lost-answer test sets."""
DRAFT = TicketDraft(
    title="Checkout errors above 5%",
    body="## What happened\n\n5xx rate **12%** on `checkout` since 10:02.",
    labels=["sev1"],
)


async def test_a_ticket_is_opened_commented_labelled_and_closed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tickets = harness.system()
    assert tickets.type == harness.name

    ref = await tickets.open(DRAFT, idempotency_key="wf-1:open")
    assert ref.system == harness.name
    assert ref.url.startswith("http://127.0.0.1:")
    assert TicketRef.model_validate_json(ref.model_dump_json()) == ref
    stored = harness.read(ref)
    assert stored.title == DRAFT.title
    assert stored.body.startswith(DRAFT.body)
    assert {"incident", "sev1"} <= set(stored.labels)
    assert stored.closed is False

    await tickets.comment(ref, "Step 1, rollout restart: done")
    await tickets.comment(ref, "Step 2, verify: the error rate is back under 1%")
    await tickets.label(ref, ["escalated", "sev1"])
    stored = harness.read(ref)
    assert stored.comments == [
        "Step 1, rollout restart: done",
        "Step 2, verify: the error rate is back under 1%",
    ]
    assert {"incident", "sev1", "escalated"} <= set(stored.labels)
    assert stored.labels.count("sev1") == 1

    await tickets.close(ref, comment="Resolved: verified healthy for 10 minutes.")
    stored = harness.read(ref)
    assert stored.closed is True
    assert stored.comments[-1] == "Resolved: verified healthy for 10 minutes."

    await tickets.close(ref, comment="Resolved again")  # a retried step: nothing more happens
    assert harness.read(ref).comments[-1] == "Resolved: verified healthy for 10 minutes."

    await tickets.reopen(ref)
    assert harness.read(ref).closed is False
    await tickets.reopen(ref)
    assert harness.read(ref).closed is False
    assert harness.count() == 1

    assert not [r for r in caplog.records if TOKEN in r.getMessage() or TOKEN in str(r.__dict__)]


async def test_open_after_a_crash_finds_the_ticket_instead_of_opening_another(harness: Harness) -> None:
    first = harness.system()
    ref = await first.open(DRAFT, idempotency_key="wf-2:open")
    await first.aclose()

    restarted = harness.system()  # a new process: no state from the first
    assert await restarted.open(DRAFT, idempotency_key="wf-2:open") == ref
    assert harness.count() == 1

    other = await restarted.open(DRAFT, idempotency_key="wf-3:open")
    assert other != ref
    assert harness.count() == 2


async def test_an_answer_lost_after_the_ticket_was_created_is_retried_safely(harness: Harness) -> None:
    tickets = harness.system(timeout_s=1)
    await tickets.open(DRAFT, idempotency_key="wf-warm:open")  # clients built, team and labels known
    harness.server.delay_next(1, 0.0)  # the search answers at once
    harness.server.delay_next(1, LATE_S)  # the create is done, its answer comes too late

    started = time.monotonic()
    with pytest.raises(TicketError) as timed_out:
        await tickets.open(DRAFT, idempotency_key="wf-4:open")
    assert timed_out.value.retryable is True
    assert harness.count() == 2

    ref = await tickets.open(DRAFT, idempotency_key="wf-4:open")
    assert harness.count() == 2
    assert harness.read(ref).title == DRAFT.title
    # Let the late answer go out, so the double stops without cutting a request short.
    await asyncio.sleep(max(0.0, started + LATE_S + 0.2 - time.monotonic()))


async def test_a_bad_token_is_a_permanent_error(harness: Harness) -> None:
    wrong = "wrong-token-9876543210"
    overrides = {"api_key": wrong} if harness.name == "linear" else {"token": wrong}
    tickets = harness.system(**overrides)

    with pytest.raises(TicketError) as refused:
        await tickets.open(DRAFT, idempotency_key="wf-5:open")
    assert refused.value.retryable is False
    assert refused.value.status == 401
    assert refused.value.system == harness.name
    assert wrong not in str(refused.value)
    assert harness.count() == 0


async def test_a_server_error_is_retryable_and_the_retry_succeeds(harness: Harness) -> None:
    tickets = harness.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-6:open")
    harness.server.fail_next(1, 503)

    with pytest.raises(TicketError) as unavailable:
        await tickets.comment(ref, "Step 1: done")
    assert unavailable.value.retryable is True
    assert unavailable.value.status == 503
    assert TOKEN not in str(unavailable.value)

    await tickets.comment(ref, "Step 1: done")
    assert harness.read(ref).comments == ["Step 1: done"]


async def test_rate_limiting_is_retryable(harness: Harness) -> None:
    tickets = harness.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-7:open")
    harness.server.fail_next(1, 429, headers={"retry-after": "7"})

    with pytest.raises(TicketError) as limited:
        await tickets.label(ref, ["escalated"])
    assert limited.value.retryable is True
    assert limited.value.status == 429
    # python-gitlab keeps no headers on its errors, so GitLab's wait is not known.
    assert limited.value.retry_after == (None if harness.name == "gitlab" else 7.0)


async def test_an_unreachable_server_is_retryable(harness: Harness) -> None:
    tickets = harness.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-8:open")
    harness.server.stop()

    with pytest.raises(TicketError) as unreachable:
        await tickets.comment(ref, "Step 1: done")
    assert unreachable.value.retryable is True
    assert unreachable.value.status is None


async def test_bad_input_is_refused_before_anything_is_sent(harness: Harness) -> None:
    tickets = harness.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-9:open")
    sent = len(harness.server.requests)

    for bad in (lambda: tickets.comment(ref, "  "), lambda: tickets.label(ref, ["two words"])):
        with pytest.raises(TicketError) as refused:
            await bad()
        assert refused.value.retryable is False
    foreign = ref.model_copy(update={"system": "jira" if harness.name != "jira" else "github"})
    with pytest.raises(TicketError, match="given to"):
        await tickets.comment(foreign, "Step 1: done")
    with pytest.raises(ValueError, match="idempotency key"):
        await tickets.open(DRAFT, idempotency_key="")
    assert len(harness.server.requests) == sent


async def test_aclose_is_safe_twice(harness: Harness) -> None:
    tickets = harness.system()
    await tickets.open(DRAFT, idempotency_key="wf-10:open")
    await tickets.aclose()
    await tickets.aclose()


async def test_a_slow_tracker_does_not_hold_the_event_loop(harness: Harness) -> None:
    tickets = harness.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-11:open")
    harness.server.delay_next(1, 0.5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await tickets.comment(ref, "Step 1: done")
    finally:
        ticker.cancel()
    assert ticks >= 10  # a blocked loop would tick once at most
    assert harness.read(ref).comments == ["Step 1: done"]


async def test_concurrent_calls_all_land(harness: Harness) -> None:
    tickets = harness.system()
    refs = await asyncio.gather(*(tickets.open(DRAFT, idempotency_key=f"wf-12:{n}:open") for n in range(3)))
    assert len({ref.id for ref in refs}) == 3
    await asyncio.gather(*(tickets.comment(ref, f"Step {n}") for ref in refs for n in range(4)))
    for ref in refs:
        assert sorted(harness.read(ref).comments) == ["Step 0", "Step 1", "Step 2", "Step 3"]
