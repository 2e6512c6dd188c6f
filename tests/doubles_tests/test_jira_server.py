"""The Jira double against the `jira` package: a ticket opened, commented per step, labelled, transitioned."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jira import JIRA, JIRAError

from tests.doubles.jira_server import JiraServer

TOKEN = "jira-test"


@pytest.fixture
def jira_server() -> Iterator[JiraServer]:
    with JiraServer(token=TOKEN, projects=["OPS"]) as server:
        yield server


@pytest.fixture
def client(jira_server: JiraServer) -> JIRA:
    return JIRA(server=jira_server.base_url, token_auth=TOKEN, max_retries=0)


def test_the_life_of_a_ticket(jira_server: JiraServer, client: JIRA) -> None:
    issue = client.create_issue(
        project="OPS",
        summary="Checkout errors",
        description="5xx rate 12%",
        issuetype={"name": "Incident"},
        labels=["incident"],
    )
    assert issue.key == "OPS-1"
    assert issue.fields.status.name == "To Do"
    client.add_comment(issue, "Step 1, rollout restart: done")
    client.add_comment("OPS-1", "Step 2, verify: the alert resolved")
    issue.add_field_value("labels", "escalated")
    assert sorted(t["name"] for t in client.transitions(issue)) == ["Done", "Start Progress"]
    client.transition_issue(issue, "Done")

    stored = jira_server.issue("OPS-1")
    assert (stored.summary, stored.description, stored.status) == ("Checkout errors", "5xx rate 12%", "Done")
    assert stored.labels == ["incident", "escalated"]
    assert jira_server.comments("OPS-1") == [
        "Step 1, rollout restart: done",
        "Step 2, verify: the alert resolved",
    ]
    assert jira_server.transitions_done == [("OPS-1", "Done")]

    again = client.issue("OPS-1")
    assert again.fields.status.name == "Done"
    assert again.fields.labels == ["incident", "escalated"]
    assert [c.body for c in client.comments(again)] == jira_server.comments("OPS-1")
    again.update(fields={"labels": ["incident"]})
    assert jira_server.issue("OPS-1").labels == ["incident"]


def test_refusals(jira_server: JiraServer, client: JIRA) -> None:
    with pytest.raises(JIRAError) as missing_summary:
        client.create_issue(project="OPS", summary="", issuetype={"name": "Task"})
    assert missing_summary.value.status_code == 400
    issue = client.create_issue(project="OPS", summary="x", issuetype={"name": "Task"})
    client.transition_issue(issue, "Done")
    with pytest.raises(JIRAError) as invalid:
        client.transition_issue(issue, "31")
    assert invalid.value.status_code == 400
    with pytest.raises(JIRAError) as gone:
        client.issue("OPS-99")
    assert gone.value.status_code == 404
    with pytest.raises(JIRAError) as stranger:
        JIRA(server=jira_server.base_url, token_auth="wrong", max_retries=0)
    assert stranger.value.status_code == 401
