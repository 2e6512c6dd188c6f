"""GitLab specifics: projects by path or id, the tracking label, the hidden marker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.doubles.gitlab_server import GitLabServer
from tests.tickets.conftest import Harness
from vigil.tickets import TicketDraft, TicketError, idempotency_token

DRAFT = TicketDraft(title="Checkout errors", body="5xx rate 12%", labels=["sev1"])


@pytest.fixture
def gitlab(harness_for: Callable[[str], Harness]) -> Harness:
    return harness_for("gitlab")


async def test_a_project_by_path_or_by_id_is_the_same_project(gitlab: Harness) -> None:
    by_path = gitlab.system()
    ref = await by_path.open(DRAFT, idempotency_key="wf-1:open")
    server = gitlab.server
    assert isinstance(server, GitLabServer)
    project_id = server.projects["acme/shop"]
    assert (ref.project, ref.id, ref.key) == (str(project_id), "1", "acme/shop#1")
    assert ref.url.endswith("/acme/shop/-/issues/1")
    stored = gitlab.read(ref)
    assert stored.labels == ["vigil", "incident", "sev1"]
    assert stored.body == f"5xx rate 12%\n\n<!-- {idempotency_token('wf-1:open')} -->"

    by_id = gitlab.system(project=project_id)
    assert await by_id.open(DRAFT, idempotency_key="wf-1:open") == ref
    await by_id.label(ref, ["escalated"])
    assert gitlab.read(ref).labels == ["vigil", "incident", "sev1", "escalated"]
    assert gitlab.count() == 1


async def test_an_unknown_project_is_a_permanent_error(gitlab: Harness) -> None:
    tickets = gitlab.system(project="acme/missing")
    with pytest.raises(TicketError) as missing:
        await tickets.open(DRAFT, idempotency_key="wf-2:open")
    assert (missing.value.retryable, missing.value.status) == (False, 404)
