"""Each ticket system against its protocol double, behind one harness so the contract is tested alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.doubles._rest import RestServer
from tests.doubles.github_server import GitHubServer
from tests.doubles.gitlab_server import GitLabServer
from tests.doubles.jira_server import JiraServer
from tests.doubles.linear_server import LinearServer
from vigil.tickets import TicketRef, TicketSystem, build_ticket_system
from vigil.tickets.specs import GitHubTicketSpec, GitLabTicketSpec, JiraTicketSpec, LinearTicketSpec

TOKEN = "secret-token-0123456789"
SYSTEMS = ["github", "gitlab", "jira", "linear"]


@dataclass(frozen=True)
class Stored:
    """A ticket as the double holds it."""

    title: str
    body: str
    labels: list[str]
    closed: bool
    comments: list[str]


@dataclass
class Harness:
    name: str
    server: RestServer
    spec_for: Callable[..., Any]
    """Keyword overrides -> the system's spec pointing at the double."""
    read: Callable[[TicketRef], Stored]
    count: Callable[[], int]
    """How many tickets the double holds."""
    built: list[TicketSystem] = field(default_factory=list)

    def system(self, **overrides: Any) -> TicketSystem:
        built = build_ticket_system(self.spec_for(**overrides))
        self.built.append(built)
        return built


def _github(server: GitHubServer) -> Harness:
    def spec_for(**overrides: Any) -> GitHubTicketSpec:
        values = {
            "type": "github",
            "base_url": server.api_url,
            "repo": "acme/shop",
            "token": TOKEN,
            "labels": ["incident"],
            "seconds_between_requests": 0,
            "seconds_between_writes": 0,
            "timeout_s": 5,
        }
        return GitHubTicketSpec.model_validate(values | overrides)

    def read(ref: TicketRef) -> Stored:
        issue = server.issue("acme/shop", int(ref.id))
        comments = server.comments("acme/shop", int(ref.id))
        return Stored(issue.title, issue.body or "", list(issue.labels), issue.state == "closed", comments)

    return Harness("github", server, spec_for, read, lambda: len(server.issues("acme/shop")))


def _gitlab(server: GitLabServer) -> Harness:
    def spec_for(**overrides: Any) -> GitLabTicketSpec:
        values = {
            "type": "gitlab",
            "url": server.base_url,
            "project": "acme/shop",
            "token": TOKEN,
            "labels": ["incident"],
            "timeout_s": 5,
        }
        return GitLabTicketSpec.model_validate(values | overrides)

    def read(ref: TicketRef) -> Stored:
        issue = server.issue("acme/shop", int(ref.id))
        notes = server.notes("acme/shop", int(ref.id))
        return Stored(
            issue.title, issue.description or "", list(issue.labels), issue.state == "closed", notes
        )

    return Harness("gitlab", server, spec_for, read, lambda: len(server.issues("acme/shop")))


def _jira(server: JiraServer) -> Harness:
    def spec_for(**overrides: Any) -> JiraTicketSpec:
        values = {
            "type": "jira",
            "url": server.base_url,
            "project": "OPS",
            "issue_type": "Incident",
            "token": TOKEN,
            "labels": ["incident"],
            "timeout_s": 5,
        }
        return JiraTicketSpec.model_validate(values | overrides)

    def read(ref: TicketRef) -> Stored:
        issue = server.issue(ref.key)
        comments = server.comments(ref.key)
        return Stored(
            issue.summary, issue.description or "", list(issue.labels), issue.status == "Done", comments
        )

    return Harness("jira", server, spec_for, read, lambda: len(server.stored))


def _linear(server: LinearServer) -> Harness:
    def spec_for(**overrides: Any) -> LinearTicketSpec:
        values = {
            "type": "linear",
            "url": f"{server.base_url}/graphql",
            "api_key": TOKEN,
            "team": "OPS",
            "labels": ["incident"],
            "timeout_s": 5,
        }
        return LinearTicketSpec.model_validate(values | overrides)

    def read(ref: TicketRef) -> Stored:
        issue = server.issue(ref.key)
        comments = server.comments(ref.key)
        return Stored(
            issue.title, issue.description or "", list(issue.labels), issue.state == "Done", comments
        )

    return Harness("linear", server, spec_for, read, lambda: len(server.stored))


def _server(name: str) -> RestServer:
    if name == "github":
        return GitHubServer(token=TOKEN, repos=["acme/shop"])
    if name == "gitlab":
        return GitLabServer(token=TOKEN, projects=["acme/shop"])
    if name == "jira":
        return JiraServer(token=TOKEN, projects=["OPS"])
    linear = LinearServer(api_key=TOKEN, teams={"OPS": "Operations", "WEB": "Web"})
    return linear


_HARNESSES: dict[str, Callable[[Any], Harness]] = {
    "github": _github,
    "gitlab": _gitlab,
    "jira": _jira,
    "linear": _linear,
}


@pytest.fixture
def server_for() -> Iterator[Callable[[str], RestServer]]:
    started: list[RestServer] = []

    def start(name: str) -> RestServer:
        server = _server(name)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def harness_for(server_for: Callable[[str], RestServer]) -> AsyncIterator[Callable[[str], Harness]]:
    made: list[Harness] = []

    def make(name: str) -> Harness:
        made.append(_HARNESSES[name](server_for(name)))
        return made[-1]

    yield make
    for harness in made:
        for system in harness.built:
            await system.aclose()


@pytest.fixture(params=SYSTEMS)
def harness(request: pytest.FixtureRequest, harness_for: Callable[[str], Harness]) -> Harness:
    return harness_for(request.param)
