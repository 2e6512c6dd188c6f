"""What every ticket system is: open a ticket, comment on it, label it, close and reopen it.

A ticket is opened once per idempotency key: `open` first looks for an open ticket that carries
the key's token (`idempotency_token`) and returns it, so a workflow step retried after a crash
never opens a second ticket. Each system carries the token where it can search for it cheaply.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vigil.errors import TicketError
from vigil.outbound import is_retryable_status

__all__ = [
    "TEXT_MAX",
    "TITLE_MAX",
    "Label",
    "TicketDraft",
    "TicketError",
    "TicketRef",
    "TicketSystem",
    "error_for_status",
    "idempotency_token",
    "merge_labels",
]

SystemName = Literal["github", "gitlab", "jira", "linear"]

TITLE_MAX = 255
"""The shortest title limit of the four (Jira's and GitLab's)."""
TEXT_MAX = 30_000
"""Bodies and comments: under Jira's 32,767 characters with room for the idempotency marker."""
IDEMPOTENCY_KEY_MAX = 1_000

Label = Annotated[str, StringConstraints(pattern=r"^[^,\s]{1,50}$")]
"""What all four take alike: up to 50 characters (GitHub's limit), no commas (GitLab lists labels
comma-separated), no whitespace (Jira refuses it)."""


class TicketDraft(BaseModel):
    """A ticket to open: a title, a Markdown body and labels (added to the system's own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=TITLE_MAX, pattern=r"^[^\r\n]*\S[^\r\n]*$")
    """One line (Jira refuses line breaks in a summary)."""
    body: str = Field(default="", max_length=TEXT_MAX, description="Markdown.")
    labels: list[Label] = Field(default_factory=list, max_length=20)


class TicketRef(BaseModel):
    """Where an opened ticket is; JSON-serialisable so a durable workflow can store it and resume.

    `id` is what the system addresses the ticket by (GitHub and GitLab issue numbers, Jira's and
    Linear's issue ids), `key` what people read (`acme/shop#12`, `OPS-7`), `project` the repository,
    project or team it is in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: SystemName
    project: str = Field(min_length=1)
    id: str = Field(min_length=1)
    key: str = Field(min_length=1)
    url: str


class TicketSystem(Protocol):
    """One configured ticket system. Every method raises `TicketError` (retryable or not) on failure.

    `close` and `reopen` do nothing to a ticket already in that state, so retrying them is safe;
    `comment` and `label` are not deduplicated (labels already present stay once).
    """

    @property
    def type(self) -> SystemName:
        """Which system: `github`, `gitlab`, `jira` or `linear`."""
        ...

    async def open(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        """The open ticket carrying `idempotency_key`, or a new one made from `draft`."""
        ...

    async def comment(self, ref: TicketRef, text: str) -> None:
        """Add a Markdown comment."""
        ...

    async def close(self, ref: TicketRef, comment: str | None = None) -> None:
        """Resolve the ticket, after adding `comment` when given."""
        ...

    async def label(self, ref: TicketRef, labels: list[str]) -> None:
        """Add `labels`, keeping those the ticket has."""
        ...

    async def reopen(self, ref: TicketRef) -> None:
        """Open a closed ticket again."""
        ...

    async def aclose(self) -> None:
        """Release connections; safe to call twice."""
        ...


def idempotency_token(key: str) -> str:
    """The token a ticket opened under `key` carries: safe as a label and as a word in any Markdown.

    Hashed so that any key (ids, colons, spaces) fits every system's label and search rules.
    """
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValueError(f"an idempotency key is 1 to {IDEMPOTENCY_KEY_MAX} characters")
    return "vigil-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def hidden_marker(token: str) -> str:
    """An HTML comment: kept verbatim by GitHub and GitLab, invisible when the body is rendered."""
    return f"<!-- {token} -->"


def merge_labels(*groups: list[str]) -> list[str]:
    """All labels of `groups` once each, in order."""
    return list(dict.fromkeys(label for group in groups for label in group))


def check_text(text: str, what: str = "comment") -> str:
    """`text` if a system will take it as a comment; a permanent error otherwise."""
    if not text.strip():
        raise TicketError(f"a ticket {what} cannot be empty", retryable=False)
    if len(text) > TEXT_MAX:
        raise TicketError(f"a ticket {what} is at most {TEXT_MAX} characters", retryable=False)
    return text


def check_labels(labels: list[str]) -> list[str]:
    """`labels` validated as a draft's are, so a bad label fails before anything is sent."""
    try:
        return TicketDraft(title="-", labels=labels).labels
    except ValueError as exc:
        raise TicketError(f"invalid ticket labels: {exc}", retryable=False) from None


def error_for_status(
    system: str, what: str, status: int | None, detail: str, retry_after: float | None = None
) -> TicketError:
    """The error for an answer with `status` (None: no answer), retryable as sinks' are."""
    retryable = status is None or is_retryable_status(status)
    shown = f"HTTP {status}: {detail}" if status is not None else detail
    return TicketError(
        f"{system} {what}: {shown}",
        retryable=retryable,
        status=status,
        system=system,
        retry_after=retry_after,
    )


def check_ref(ref: TicketRef, system: SystemName) -> TicketRef:
    if ref.system != system:
        raise TicketError(
            f"a {ref.system} ticket ({ref.key}) given to {system}", retryable=False, system=system
        )
    return ref


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header's seconds (dates are rare from these APIs and taken as absent)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
