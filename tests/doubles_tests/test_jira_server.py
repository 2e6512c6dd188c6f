"""The Jira double against the `jira` package: a ticket opened, commented per step, labelled, transitioned."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
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


def test_search_by_jql(jira_server: JiraServer, client: JIRA) -> None:
    for summary, labels in (("a", ["incident", "vigil-1"]), ("b", ["incident"]), ("c", ["vigil-1"])):
        client.create_issue(project="OPS", summary=summary, issuetype={"name": "Task"}, labels=labels)
    client.transition_issue("OPS-3", "Done")

    def keys(jql: str) -> list[str]:
        found = client.search_issues(jql, maxResults=10, fields=["summary"], json_result=True)
        assert isinstance(found, dict)
        assert found["total"] == len(found["issues"])
        return [issue["key"] for issue in found["issues"]]

    assert keys('project = "OPS" AND labels = "vigil-1" ORDER BY created ASC') == ["OPS-1", "OPS-3"]
    assert keys('project = OPS AND labels = "vigil-1" AND statusCategory != Done') == ["OPS-1"]
    assert keys("labels in (incident, vigil-1) AND status = Done") == ["OPS-3"]
    assert keys('labels not in ("vigil-1")') == ["OPS-2"]
    assert keys("project = ELSE") == []
    with pytest.raises(JIRAError) as unknown_field:
        keys("reporter = someone")
    assert unknown_field.value.status_code == 400
    with pytest.raises(JIRAError) as unparsed:
        keys("summary ~ checkout")
    assert unparsed.value.status_code == 400


def test_jira_cloud_searches_with_search_jql() -> None:
    with JiraServer(token=TOKEN, projects=["OPS"], cloud=True) as cloud:
        client = JIRA(server=cloud.base_url, basic_auth=("vigil@example.test", TOKEN), max_retries=0)
        client.create_issue(project="OPS", summary="a", issuetype={"name": "Task"}, labels=["vigil-1"])
        found = client.search_issues('labels = "vigil-1"', maxResults=5, fields=["summary"], json_result=True)
        assert isinstance(found, dict)
        assert [issue["key"] for issue in found["issues"]] == ["OPS-1"]
        assert [r.path for r in cloud.requests if "search" in r.path] == ["/rest/api/2/search/jql"]
        old = httpx.get(
            f"{cloud.base_url}/rest/api/2/search", params={"jql": "project = OPS"}, auth=("v", TOKEN)
        )
        assert old.status_code == 410
