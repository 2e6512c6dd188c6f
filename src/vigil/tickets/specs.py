"""How a project's ticket system is configured: one spec per system, told apart by `type`.

Stored per project, so the models are strict (unknown fields are errors), secrets are `SecretStr`
(masked in reprs and logs) and every default is one that works against the public service.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr

from vigil.tickets.base import Label

__all__ = ["GitHubTicketSpec", "GitLabTicketSpec", "JiraTicketSpec", "LinearTicketSpec", "TicketSpec"]

Timeout = Annotated[
    float,
    Field(
        gt=0,
        le=300,
        description="Limit in seconds for one operation (open, comment, close, ...) and each request in it.",
    ),
]
Labels = Annotated[list[Label], Field(default_factory=list, description="Put on every ticket opened.")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitHubTicketSpec(_Strict):
    type: Literal["github"]
    base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.github.com"),
        description="The REST API root; for GitHub Enterprise Server, https://HOST/api/v3.",
    )
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    token: SecretStr = Field(description="A token that may write the repository's issues.")
    labels: Labels
    tracking_label: Label = Field(
        default="vigil",
        description="Put on every ticket Vigil opens; open tickets with it are searched for the idempotency key.",
    )
    timeout_s: Timeout = 30.0
    seconds_between_requests: float = Field(
        default=0.25, ge=0, le=60, description="PyGithub's pause between requests (GitHub asks for one)."
    )
    seconds_between_writes: float = Field(
        default=1.0, ge=0, le=60, description="PyGithub's pause between writes (GitHub's secondary limit)."
    )


class GitLabTicketSpec(_Strict):
    type: Literal["gitlab"]
    url: AnyHttpUrl = Field(default=AnyHttpUrl("https://gitlab.com"), description="The instance's root URL.")
    project: Annotated[int, Field(ge=1)] | Annotated[str, Field(min_length=1)] = Field(
        description="The project's numeric id or its path (group/name)."
    )
    token: SecretStr = Field(description="A personal, group or project access token with the api scope.")
    labels: Labels
    tracking_label: Label = Field(
        default="vigil",
        description="Put on every ticket Vigil opens; open tickets with it are searched for the idempotency key.",
    )
    timeout_s: Timeout = 30.0


class JiraTicketSpec(_Strict):
    type: Literal["jira"]
    url: AnyHttpUrl = Field(description="The site, e.g. https://acme.atlassian.net")
    project: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,254}$", description="The project key, e.g. OPS.")
    issue_type: str = Field(default="Task", min_length=1)
    email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Jira Cloud: the account's email, with an API token. Leave out for a personal access token.",
    )
    token: SecretStr = Field(
        description="Jira Cloud API token (with email) or Data Center personal access token."
    )
    labels: Labels
    close_transition: str = Field(default="Done", min_length=1, description="The transition that resolves.")
    reopen_transition: str = Field(default="Reopen", min_length=1, description="The one that reopens.")
    timeout_s: Timeout = 30.0


class LinearTicketSpec(_Strict):
    type: Literal["linear"]
    url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.linear.app/graphql"), description="GraphQL endpoint."
    )
    api_key: SecretStr = Field(description="A personal API key (lin_api_...).")
    team: str = Field(min_length=1, max_length=20, description="The team's key, e.g. OPS.")
    labels: Labels
    timeout_s: Timeout = 30.0


TicketSpec = Annotated[
    GitHubTicketSpec | GitLabTicketSpec | JiraTicketSpec | LinearTicketSpec, Field(discriminator="type")
]
