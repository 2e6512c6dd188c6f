"""The GitHub double against PyGithub: a ticket opened, commented per step, labelled, closed."""

from __future__ import annotations

from collections.abc import Iterator

import github
import pytest
from github import Auth, Github

from tests.doubles.github_server import GitHubServer

TOKEN = "ghp_test"


def fast_client(gh: GitHubServer, token: str) -> Github:
    # PyGithub spaces requests out (0.25 s, and 1 s between writes) to be kind to github.com
    return Github(
        base_url=gh.api_url,
        auth=Auth.Token(token),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


@pytest.fixture
def gh() -> Iterator[GitHubServer]:
    with GitHubServer(token=TOKEN, repos=["acme/shop"]) as server:
        yield server


@pytest.fixture
def client(gh: GitHubServer) -> Iterator[Github]:
    api = fast_client(gh, TOKEN)
    yield api
    api.close()


def test_the_life_of_a_ticket(gh: GitHubServer, client: Github) -> None:
    repo = client.get_repo("acme/shop")
    issue = repo.create_issue("Checkout errors", body="5xx rate 12%", labels=["incident"])
    assert issue.number == 1
    assert issue.html_url.endswith("/acme/shop/issues/1")
    issue.create_comment("Step 1, rollout restart: done")
    issue.create_comment("Step 2, verify: the alert resolved")
    issue.add_to_labels("escalated")
    issue.edit(state="closed", state_reason="completed")

    stored = gh.issue("acme/shop", 1)
    assert (stored.title, stored.body, stored.state, stored.state_reason) == (
        "Checkout errors",
        "5xx rate 12%",
        "closed",
        "completed",
    )
    assert stored.labels == ["incident", "escalated"]
    assert gh.comments("acme/shop", 1) == [
        "Step 1, rollout restart: done",
        "Step 2, verify: the alert resolved",
    ]

    again = repo.get_issue(1)
    assert again.state == "closed"
    assert [label.name for label in again.labels] == ["incident", "escalated"]
    assert [c.body for c in again.get_comments()] == gh.comments("acme/shop", 1)
    assert [i.number for i in repo.get_issues(state="closed", labels=["incident"])] == [1]
    assert list(repo.get_issues(state="open")) == []
    issue.remove_from_labels("escalated")
    assert gh.issue("acme/shop", 1).labels == ["incident"]


def test_refusals(gh: GitHubServer, client: Github) -> None:
    with pytest.raises(github.UnknownObjectException):
        client.get_repo("acme/missing")
    with pytest.raises(github.GithubException) as invalid:
        client.get_repo("acme/shop").create_issue("")
    assert invalid.value.status == 422
    with pytest.raises(github.BadCredentialsException):
        fast_client(gh, "wrong").get_repo("acme/shop")
    assert gh.issues("acme/shop") == []
    gh.fail_next(1, 502)
    with pytest.raises(github.GithubException) as unavailable:
        client.get_repo("acme/shop")
    assert unavailable.value.status == 502
    assert unavailable.value.data["message"] == "scripted failure 502"
