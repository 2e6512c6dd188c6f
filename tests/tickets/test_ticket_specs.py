"""Ticket settings: one strict spec per system, told apart by `type`, built through the registry."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from vigil.tickets import (
    TICKET_TYPES,
    GitHubTickets,
    GitLabTickets,
    JiraTickets,
    LinearTickets,
    TicketSpec,
    build_ticket_system,
)
from vigil.tickets.specs import GitHubTicketSpec, JiraTicketSpec

SECRET = "ghp_not-a-real-token-0123456789"
SPECS: dict[str, dict[str, Any]] = {
    "github": {"type": "github", "repo": "acme/shop", "token": SECRET},
    "gitlab": {"type": "gitlab", "project": "acme/shop", "token": SECRET},
    "jira": {
        "type": "jira",
        "url": "https://acme.atlassian.net",
        "project": "OPS",
        "email": "a@b.c",
        "token": SECRET,
    },
    "linear": {"type": "linear", "api_key": SECRET, "team": "OPS"},
}
CLASSES = {"github": GitHubTickets, "gitlab": GitLabTickets, "jira": JiraTickets, "linear": LinearTickets}
ADAPTER: TypeAdapter[Any] = TypeAdapter(TicketSpec)


@pytest.mark.parametrize("name", sorted(SPECS))
async def test_each_type_parses_and_builds_its_system_without_showing_the_secret(name: str) -> None:
    spec = ADAPTER.validate_python(SPECS[name])
    assert spec.type == name
    assert SECRET not in repr(spec)
    assert SECRET not in spec.model_dump_json()
    system = build_ticket_system(spec)
    assert isinstance(system, CLASSES[name])
    assert SECRET not in repr(system)
    assert ADAPTER.validate_python(spec.model_dump()) == spec
    await system.aclose()


def test_defaults_point_at_the_public_services() -> None:
    github = ADAPTER.validate_python(SPECS["github"])
    assert str(github.base_url) == "https://api.github.com/"
    assert (github.tracking_label, github.labels, github.timeout_s) == ("vigil", [], 30.0)
    assert str(ADAPTER.validate_python(SPECS["gitlab"]).url) == "https://gitlab.com/"
    jira = ADAPTER.validate_python(SPECS["jira"])
    assert (jira.issue_type, jira.close_transition, jira.reopen_transition) == ("Task", "Done", "Reopen")
    assert str(ADAPTER.validate_python(SPECS["linear"]).url) == "https://api.linear.app/graphql"


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "trello", "board": "x"},
        SPECS["github"] | {"repo": "no-slash"},
        SPECS["github"] | {"token_typo": "x"},
        SPECS["github"] | {"labels": ["has space"]},
        SPECS["github"] | {"timeout_s": 0},
        {k: v for k, v in SPECS["github"].items() if k != "token"},
        SPECS["gitlab"] | {"url": "not a url"},
        SPECS["jira"] | {"project": "ops"},
        SPECS["jira"] | {"email": "not an email"},
        SPECS["gitlab"] | {"project": ""},
        SPECS["gitlab"] | {"project": 0},
        {k: v for k, v in SPECS["jira"].items() if k != "url"},
        SPECS["linear"] | {"team": ""},
    ],
)
def test_bad_settings_are_refused_clearly(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(spec)


def test_the_registry_holds_every_type_and_refuses_a_mismatched_spec() -> None:
    assert sorted(TICKET_TYPES) == ["github", "gitlab", "jira", "linear"]
    spec = GitHubTicketSpec.model_validate(SPECS["github"])
    wrong = JiraTicketSpec.model_construct(**(SPECS["jira"] | {"type": "github"}))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="GitHubTicketSpec"):
        build_ticket_system(wrong)
    assert isinstance(build_ticket_system(spec), GitHubTickets)
