"""GitHub specifics: the tracking label, the hidden marker, the repository in the ref."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import pytest

from tests.doubles.github_server import GitHubServer
from tests.tickets.conftest import Harness
from vigil.tickets import TicketDraft, TicketError, idempotency_token

DRAFT = TicketDraft(title="Checkout errors", body="5xx rate 12%", labels=["sev1"])


@pytest.fixture
def github(harness_for: Callable[[str], Harness]) -> Harness:
    return harness_for("github")


async def test_the_ticket_carries_the_tracking_label_and_a_hidden_marker(github: Harness) -> None:
    tickets = github.system(tracking_label="vigil-managed")
    ref = await tickets.open(DRAFT, idempotency_key="wf-1:open")

    assert (ref.project, ref.id, ref.key) == ("acme/shop", "1", "acme/shop#1")
    assert ref.url.endswith("/acme/shop/issues/1")
    stored = github.read(ref)
    assert stored.labels == ["vigil-managed", "incident", "sev1"]
    assert stored.body == f"5xx rate 12%\n\n<!-- {idempotency_token('wf-1:open')} -->"
    server = github.server
    assert isinstance(server, GitHubServer)
    listed = [r for r in server.requests if r.method == "GET" and r.path.endswith("/issues")]
    assert [parse_qs(r.query) for r in listed] == [{"state": ["open"], "labels": ["vigil-managed"]}]


async def test_a_closed_ticket_is_not_reused(github: Harness) -> None:
    tickets = github.system()
    first = await tickets.open(DRAFT, idempotency_key="wf-2:open")
    await tickets.close(first)
    second = await tickets.open(DRAFT, idempotency_key="wf-2:open")
    assert second.id != first.id


async def test_an_unknown_repository_is_a_permanent_error(github: Harness) -> None:
    tickets = github.system(repo="acme/missing")
    with pytest.raises(TicketError) as missing:
        await tickets.open(DRAFT, idempotency_key="wf-3:open")
    assert (missing.value.retryable, missing.value.status) == (False, 404)
    assert "acme/missing" in str(missing.value)
