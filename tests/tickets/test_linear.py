"""Linear specifics: the footer marker, states by type, labels found or created by name."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.doubles.linear_server import LinearServer
from tests.tickets.conftest import Harness
from vigil.tickets import TicketDraft, TicketError, idempotency_token

DRAFT = TicketDraft(title="Checkout errors", body="5xx rate 12%", labels=["sev1"])


@pytest.fixture
def linear(harness_for: Callable[[str], Harness]) -> Harness:
    return harness_for("linear")


def server_of(harness: Harness) -> LinearServer:
    assert isinstance(harness.server, LinearServer)
    return harness.server


async def test_labels_are_reused_by_name_or_created_in_the_team(linear: Harness) -> None:
    server = server_of(linear)
    workspace_label = server.add_label("Incident")
    other_team_label = server.add_label("sev1", team="WEB")
    tickets = linear.system()

    ref = await tickets.open(DRAFT, idempotency_key="wf-1:open")
    assert (ref.project, ref.key) == ("OPS", "OPS-1")
    stored = server.issue("OPS-1")
    assert stored.labels == ["Incident", "sev1"]
    assert stored.description == f"5xx rate 12%\n\n---\nVigil reference `{idempotency_token('wf-1:open')}`"
    sev1 = [lid for lid, label in server.labels.items() if label["name"] == "sev1"]
    assert len(sev1) == 2
    assert other_team_label in sev1
    assert workspace_label in server.labels

    await tickets.label(ref, ["sev1", "escalated"])
    assert server.issue("OPS-1").labels == ["Incident", "sev1", "escalated"]
    assert server.operations.count("issueLabelCreate") == 2  # sev1 for OPS, escalated; each once


async def test_close_moves_to_the_completed_state_and_reopen_to_the_unstarted_one(linear: Harness) -> None:
    tickets = linear.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-2:open")
    await tickets.close(ref)
    assert server_of(linear).issue("OPS-1").state == "Done"
    await tickets.reopen(ref)
    assert server_of(linear).issue("OPS-1").state == "Todo"


async def test_an_unknown_team_is_a_permanent_error(linear: Harness) -> None:
    tickets = linear.system(team="NOPE")
    with pytest.raises(TicketError, match="no team with key 'NOPE'") as missing:
        await tickets.open(DRAFT, idempotency_key="wf-3:open")
    assert missing.value.retryable is False


async def test_linear_rate_limiting_answered_as_a_400_is_retryable(linear: Harness) -> None:
    tickets = linear.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-4:open")
    body = b'{"errors":[{"message":"Rate limit exceeded","extensions":{"code":"RATELIMITED"}}]}'
    server_of(linear).fail_next(1, 400, body=body, headers={"content-type": "application/json"})
    with pytest.raises(TicketError, match="rate limited") as limited:
        await tickets.comment(ref, "Step 1: done")
    assert limited.value.retryable is True


async def test_an_unknown_issue_is_a_permanent_error(linear: Harness) -> None:
    tickets = linear.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-5:open")
    gone = ref.model_copy(update={"id": "00000000-0000-0000-0000-000000000000"})
    with pytest.raises(TicketError, match="Entity not found") as missing:
        await tickets.comment(gone, "Step 1: done")
    assert missing.value.retryable is False
