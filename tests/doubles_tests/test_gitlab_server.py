"""The GitLab double against python-gitlab: a ticket opened, noted per step, labelled, closed."""

from __future__ import annotations

from collections.abc import Iterator

import gitlab
import pytest

from tests.doubles.gitlab_server import GitLabServer

TOKEN = "glpat-test"


@pytest.fixture
def gl() -> Iterator[GitLabServer]:
    with GitLabServer(token=TOKEN, projects=["acme/shop"]) as server:
        yield server


@pytest.fixture
def client(gl: GitLabServer) -> Iterator[gitlab.Gitlab]:
    with gitlab.Gitlab(gl.base_url, private_token=TOKEN, retry_transient_errors=False) as api:
        yield api


def test_the_life_of_a_ticket(gl: GitLabServer, client: gitlab.Gitlab) -> None:
    project = client.projects.get("acme/shop")
    issue = project.issues.create(
        {"title": "Checkout errors", "description": "5xx rate 12%", "labels": ["incident"]}
    )
    assert (issue.iid, issue.state, issue.labels) == (1, "opened", ["incident"])
    issue.notes.create({"body": "Step 1, rollout restart: done"})
    issue.notes.create({"body": "Step 2, verify: the alert resolved"})
    issue.labels = [*issue.labels, "escalated"]
    issue.save()
    issue.state_event = "close"
    issue.save()

    stored = gl.issue("acme/shop", 1)
    assert (stored.title, stored.description, stored.state) == ("Checkout errors", "5xx rate 12%", "closed")
    assert stored.labels == ["incident", "escalated"]
    assert gl.notes("acme/shop", 1) == ["Step 1, rollout restart: done", "Step 2, verify: the alert resolved"]

    again = client.projects.get(project.id, lazy=True).issues.get(1)
    assert (again.state, again.labels) == ("closed", ["incident", "escalated"])
    assert [n.body for n in again.notes.list(get_all=True)] == gl.notes("acme/shop", 1)
    assert [i.iid for i in project.issues.list(state="closed", labels=["incident"], get_all=True)] == [1]
    assert project.issues.list(state="opened", get_all=True) == []
    client.http_put(f"/projects/{project.id}/issues/1", post_data={"remove_labels": "escalated"})
    assert gl.issue("acme/shop", 1).labels == ["incident"]


def test_refusals(gl: GitLabServer, client: gitlab.Gitlab) -> None:
    with pytest.raises(gitlab.GitlabGetError) as missing:
        client.projects.get("acme/missing")
    assert missing.value.response_code == 404
    with pytest.raises(gitlab.GitlabCreateError) as invalid:
        client.projects.get("acme/shop").issues.create({"title": ""})
    assert invalid.value.response_code == 400
    with (
        gitlab.Gitlab(gl.base_url, private_token="wrong") as stranger,
        pytest.raises(gitlab.GitlabAuthenticationError),
    ):
        stranger.projects.get("acme/shop")
    assert gl.issues("acme/shop") == []
