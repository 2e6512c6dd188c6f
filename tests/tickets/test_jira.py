"""Jira specifics: the idempotency label, transitions by name, both ways to authenticate."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import pytest

from tests.doubles.jira_server import JiraServer
from tests.tickets.conftest import TOKEN, Harness
from vigil.tickets import JiraTickets, TicketDraft, TicketError, idempotency_token
from vigil.tickets.specs import JiraTicketSpec

DRAFT = TicketDraft(title="Checkout errors", body="5xx rate 12%", labels=["sev1"])


@pytest.fixture
def jira(harness_for: Callable[[str], Harness]) -> Harness:
    return harness_for("jira")


def server_of(harness: Harness) -> JiraServer:
    assert isinstance(harness.server, JiraServer)
    return harness.server


async def test_the_ticket_carries_its_key_as_a_label_and_is_found_by_jql(jira: Harness) -> None:
    tickets = jira.system()
    ref = await tickets.open(DRAFT, idempotency_key="wf-1:open")

    stored = server_of(jira).issue("OPS-1")
    assert (ref.project, ref.key, ref.id) == ("OPS", "OPS-1", stored.id)
    assert ref.url.endswith("/browse/OPS-1")
    assert stored.issue_type == "Incident"
    assert stored.description == "5xx rate 12%"
    token = idempotency_token("wf-1:open")
    assert stored.labels == ["incident", "sev1", token]
    searches = [r for r in server_of(jira).requests if r.path == "/rest/api/2/search"]
    assert len(searches) == 1
    [jql] = parse_qs(searches[0].query)["jql"]
    assert jql == f'project = "OPS" AND labels = "{token}" AND statusCategory != Done ORDER BY created ASC'


async def test_close_and_reopen_take_the_configured_transitions(jira: Harness) -> None:
    tickets = jira.system(close_transition="done", reopen_transition="Reopen")
    ref = await tickets.open(DRAFT, idempotency_key="wf-2:open")
    await tickets.close(ref, comment="Resolved")
    await tickets.reopen(ref)
    assert server_of(jira).transitions_done == [("OPS-1", "Done"), ("OPS-1", "Reopen")]
    assert server_of(jira).issue("OPS-1").status == "To Do"


async def test_a_transition_the_workflow_lacks_is_a_permanent_error_naming_those_it_has(
    jira: Harness,
) -> None:
    tickets = jira.system(close_transition="Resolve Issue")
    ref = await tickets.open(DRAFT, idempotency_key="wf-3:open")
    with pytest.raises(TicketError, match=r"'Resolve Issue'.*'Start Progress', 'Done'") as missing:
        await tickets.close(ref)
    assert missing.value.retryable is False
    assert server_of(jira).issue("OPS-1").status == "To Do"


async def test_email_and_api_token_authenticate_as_on_jira_cloud(jira: Harness) -> None:
    tickets = jira.system(email="vigil@example.test")
    ref = await tickets.open(DRAFT, idempotency_key="wf-4:open")
    assert ref.key == "OPS-1"
    assert all((r.header("authorization") or "").startswith("Basic ") for r in server_of(jira).requests)


async def test_errors_never_show_the_credentials(jira: Harness) -> None:
    tickets = jira.system(project="NOPE")
    with pytest.raises(TicketError) as refused:
        await tickets.open(DRAFT, idempotency_key="wf-5:open")
    assert refused.value.retryable is False
    assert refused.value.status == 400
    assert "project" in str(refused.value)
    assert TOKEN not in str(refused.value)
    assert "Authorization" not in str(refused.value)


async def test_on_jira_cloud_the_search_is_search_jql() -> None:
    async with JiraServer(token=TOKEN, projects=["OPS"], cloud=True) as server:
        spec = JiraTicketSpec(
            type="jira",
            url=server.base_url,
            project="OPS",
            email="vigil@example.test",
            token=TOKEN,
            timeout_s=5,
        )
        tickets = JiraTickets(spec)
        try:
            ref = await tickets.open(DRAFT, idempotency_key="wf-6:open")
            assert await JiraTickets(spec).open(DRAFT, idempotency_key="wf-6:open") == ref
            await tickets.comment(ref, "Step 1: done")
            await tickets.label(ref, ["escalated"])
            await tickets.close(ref, comment="Resolved")
        finally:
            await tickets.aclose()
        assert len(server.stored) == 1
        assert server.issue("OPS-1").status == "Done"
        assert server.comments("OPS-1") == ["Step 1: done", "Resolved"]
        searched = {r.path for r in server.requests if "/search" in r.path}
        assert searched == {"/rest/api/2/search/jql"}
