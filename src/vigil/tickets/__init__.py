"""Tickets a remediation workflow opens, comments on, labels and closes. A ticket system is one
module plus one line in `TICKET_TYPES`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vigil.errors import TicketError
from vigil.tickets.base import TicketDraft, TicketRef, TicketSystem, idempotency_token
from vigil.tickets.github import GitHubTickets
from vigil.tickets.gitlab import GitLabTickets
from vigil.tickets.jira import JiraTickets
from vigil.tickets.linear import LinearTickets
from vigil.tickets.specs import (
    GitHubTicketSpec,
    GitLabTicketSpec,
    JiraTicketSpec,
    LinearTicketSpec,
    TicketSpec,
)

TicketFactory = Callable[[Any], TicketSystem]

TICKET_TYPES: dict[str, tuple[type[Any], TicketFactory]] = {
    "github": (GitHubTicketSpec, GitHubTickets),
    "gitlab": (GitLabTicketSpec, GitLabTickets),
    "jira": (JiraTicketSpec, JiraTickets),
    "linear": (LinearTicketSpec, LinearTickets),
}


def build_ticket_system(spec: TicketSpec) -> TicketSystem:
    """The ticket system `spec` configures. It owns its connections: `aclose` it when done."""
    try:
        spec_type, factory = TICKET_TYPES[spec.type]
    except KeyError:
        known = ", ".join(sorted(TICKET_TYPES))
        raise ValueError(f"unknown ticket system {spec.type!r}; known: {known}") from None
    if not isinstance(spec, spec_type):
        raise TypeError(
            f"a {spec.type} ticket system needs a {spec_type.__name__}, got {type(spec).__name__}"
        )
    return factory(spec)


__all__ = [
    "TICKET_TYPES",
    "GitHubTicketSpec",
    "GitHubTickets",
    "GitLabTicketSpec",
    "GitLabTickets",
    "JiraTicketSpec",
    "JiraTickets",
    "LinearTicketSpec",
    "LinearTickets",
    "TicketDraft",
    "TicketError",
    "TicketRef",
    "TicketSpec",
    "TicketSystem",
    "build_ticket_system",
    "idempotency_token",
]
