"""GitHub Issues through PyGithub.

Idempotency: the body ends with a hidden `<!-- vigil-... -->` marker and every ticket carries the
spec's `tracking_label`, so `open` lists the repository's open issues with that label (a consistent
read, unlike GitHub's search index, which lags) and looks for the marker before creating one.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

from github import Auth, Github, GithubException, RateLimitExceededException
from github.Issue import Issue

from vigil.errors import TicketError
from vigil.tickets.base import (
    TicketDraft,
    TicketRef,
    check_labels,
    check_ref,
    check_text,
    error_for_status,
    hidden_marker,
    idempotency_token,
    merge_labels,
    retry_after_seconds,
)
from vigil.tickets.blocking import BlockingClient
from vigil.tickets.specs import GitHubTicketSpec

log = logging.getLogger(__name__)


class GitHubTickets:
    type: Literal["github"] = "github"

    def __init__(self, spec: GitHubTicketSpec) -> None:
        self.spec = spec
        self._client = BlockingClient("github", self._connect, _classify, spec.timeout_s, Github.close)

    def __repr__(self) -> str:
        return f"GitHubTickets(repo={self.spec.repo!r}, base_url={str(self.spec.base_url)!r})"

    def _connect(self) -> Github:
        return Github(
            base_url=str(self.spec.base_url).rstrip("/"),
            auth=Auth.Token(self.spec.token.get_secret_value()),
            timeout=math.ceil(self.spec.timeout_s),
            retry=None,  # retrying is the workflow's, which knows what is retryable
            lazy=True,  # an issue is addressed by number without fetching it first
            seconds_between_requests=self.spec.seconds_between_requests,
            seconds_between_writes=self.spec.seconds_between_writes,
        )

    def _issue(self, client: Github, ref: TicketRef) -> Issue:
        return client.get_repo(ref.project).get_issue(int(ref.id))

    def _ref(self, issue: Issue) -> TicketRef:
        repo = self.spec.repo
        return TicketRef(
            system="github",
            project=repo,
            id=str(issue.number),
            key=f"{repo}#{issue.number}",
            url=issue.html_url,
        )

    async def open(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        marker = hidden_marker(idempotency_token(idempotency_key))
        tracking = self.spec.tracking_label

        def work(client: Github) -> tuple[TicketRef, bool]:
            repo = client.get_repo(self.spec.repo)
            for issue in repo.get_issues(state="open", labels=[tracking]):
                if marker in (issue.body or ""):
                    return self._ref(issue), False
            labels = merge_labels([tracking], list(self.spec.labels), list(draft.labels))
            body = f"{draft.body}\n\n{marker}" if draft.body else marker
            created = repo.create_issue(title=draft.title, body=body, labels=labels)
            return self._ref(created), True

        ref, created = await self._client.run(f"open a ticket in {self.spec.repo}", work)
        log.info(
            "ticket %s", "opened" if created else "found open", extra={"system": "github", "ticket": ref.key}
        )
        return ref

    async def comment(self, ref: TicketRef, text: str) -> None:
        check_ref(ref, "github")
        check_text(text)
        await self._client.run(
            f"comment on {ref.key}", lambda client: self._issue(client, ref).create_comment(text)
        )

    async def close(self, ref: TicketRef, comment: str | None = None) -> None:
        check_ref(ref, "github")
        if comment is not None:
            check_text(comment)

        def work(client: Github) -> bool:
            issue = self._issue(client, ref)
            if issue.state == "closed":
                return False
            if comment is not None:
                issue.create_comment(comment)
            issue.edit(state="closed", state_reason="completed")
            return True

        if await self._client.run(f"close {ref.key}", work):
            log.info("ticket closed", extra={"system": "github", "ticket": ref.key})

    async def label(self, ref: TicketRef, labels: list[str]) -> None:
        check_ref(ref, "github")
        wanted = check_labels(labels)
        if wanted:
            await self._client.run(
                f"label {ref.key}", lambda client: self._issue(client, ref).add_to_labels(*wanted)
            )

    async def reopen(self, ref: TicketRef) -> None:
        check_ref(ref, "github")

        def work(client: Github) -> None:
            issue = self._issue(client, ref)
            if issue.state != "open":
                issue.edit(state="open")

        await self._client.run(f"reopen {ref.key}", work)

    async def aclose(self) -> None:
        await self._client.aclose()


def _classify(exc: Exception, what: str) -> TicketError | None:
    if not isinstance(exc, GithubException):
        return None
    headers = exc.headers or {}
    retry_after = retry_after_seconds(headers.get("retry-after") or headers.get("Retry-After"))
    message = exc.message or (exc.data.get("message") if isinstance(exc.data, dict) else None) or ""
    if isinstance(exc, RateLimitExceededException):
        return TicketError(
            f"github {what}: rate limited ({exc.status}): {message}",
            retryable=True,
            status=exc.status,
            system="github",
            retry_after=retry_after,
        )
    return error_for_status("github", what, exc.status, str(message)[:300], retry_after)
