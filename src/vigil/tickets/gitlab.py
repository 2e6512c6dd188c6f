"""GitLab issues through python-gitlab.

Idempotency: the description ends with a hidden `<!-- vigil-... -->` marker and every ticket carries
the spec's `tracking_label`, so `open` lists the project's open issues with that label and looks for
the marker before creating one.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import gitlab
from gitlab.exceptions import GitlabError
from gitlab.v4.objects import Project, ProjectIssue

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
)
from vigil.tickets.blocking import BlockingClient
from vigil.tickets.specs import GitLabTicketSpec

log = logging.getLogger(__name__)

_NO_SLEEPING: dict[str, Any] = {"obey_rate_limit": False}
"""python-gitlab would otherwise sleep through 429s in our worker thread; retrying is the workflow's."""


class GitLabTickets:
    type: Literal["gitlab"] = "gitlab"

    def __init__(self, spec: GitLabTicketSpec) -> None:
        self.spec = spec
        self._client = BlockingClient(
            "gitlab", self._connect, _classify, spec.timeout_s, lambda client: client.session.close()
        )

    def __repr__(self) -> str:
        return f"GitLabTickets(project={self.spec.project!r}, url={str(self.spec.url)!r})"

    def _connect(self) -> gitlab.Gitlab:
        return gitlab.Gitlab(
            str(self.spec.url).rstrip("/"),
            private_token=self.spec.token.get_secret_value(),
            timeout=self.spec.timeout_s,
            retry_transient_errors=False,
        )

    def _project(self, client: gitlab.Gitlab, project: str | int) -> Project:
        return client.projects.get(project, lazy=True)

    def _ref(self, issue: ProjectIssue) -> TicketRef:
        references = issue.attributes.get("references") or {}
        path = str(references.get("full", "")).rpartition("#")[0] or str(self.spec.project)
        return TicketRef(
            system="gitlab",
            project=str(issue.project_id),
            id=str(issue.iid),
            key=f"{path}#{issue.iid}",
            url=issue.web_url,
        )

    async def open(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        marker = hidden_marker(idempotency_token(idempotency_key))
        tracking = self.spec.tracking_label

        def work(client: gitlab.Gitlab) -> tuple[TicketRef, bool]:
            project = self._project(client, self.spec.project)
            for issue in project.issues.list(
                state="opened", labels=[tracking], iterator=True, **_NO_SLEEPING
            ):
                if marker in (issue.description or ""):
                    return self._ref(issue), False
            labels = merge_labels([tracking], list(self.spec.labels), list(draft.labels))
            body = f"{draft.body}\n\n{marker}" if draft.body else marker
            data = {"title": draft.title, "description": body, "labels": labels}
            created = project.issues.create(data, **_NO_SLEEPING)
            return self._ref(created), True

        ref, created = await self._client.run(f"open a ticket in {self.spec.project}", work)
        log.info(
            "ticket %s", "opened" if created else "found open", extra={"system": "gitlab", "ticket": ref.key}
        )
        return ref

    async def comment(self, ref: TicketRef, text: str) -> None:
        check_ref(ref, "gitlab")
        check_text(text)

        def work(client: gitlab.Gitlab) -> None:
            issue = self._project(client, ref.project).issues.get(int(ref.id), lazy=True)
            issue.notes.create({"body": text}, **_NO_SLEEPING)

        await self._client.run(f"comment on {ref.key}", work)

    async def close(self, ref: TicketRef, comment: str | None = None) -> None:
        check_ref(ref, "gitlab")
        if comment is not None:
            check_text(comment)

        def work(client: gitlab.Gitlab) -> bool:
            issues = self._project(client, ref.project).issues
            issue = issues.get(int(ref.id), **_NO_SLEEPING)
            if issue.state == "closed":
                return False
            if comment is not None:
                issue.notes.create({"body": comment}, **_NO_SLEEPING)
            issues.update(int(ref.id), {"state_event": "close"}, **_NO_SLEEPING)
            return True

        if await self._client.run(f"close {ref.key}", work):
            log.info("ticket closed", extra={"system": "gitlab", "ticket": ref.key})

    async def label(self, ref: TicketRef, labels: list[str]) -> None:
        check_ref(ref, "gitlab")
        wanted = check_labels(labels)
        if wanted:
            await self._client.run(
                f"label {ref.key}",
                lambda client: self._project(client, ref.project).issues.update(
                    int(ref.id), {"add_labels": ",".join(wanted)}, **_NO_SLEEPING
                ),
            )

    async def reopen(self, ref: TicketRef) -> None:
        check_ref(ref, "gitlab")

        def work(client: gitlab.Gitlab) -> None:
            issues = self._project(client, ref.project).issues
            if issues.get(int(ref.id), **_NO_SLEEPING).state == "closed":
                issues.update(int(ref.id), {"state_event": "reopen"}, **_NO_SLEEPING)

        await self._client.run(f"reopen {ref.key}", work)

    async def aclose(self) -> None:
        await self._client.aclose()


def _classify(exc: Exception, what: str) -> TicketError | None:
    if not isinstance(exc, GitlabError):
        return None
    if exc.response_code is None:  # not an answer: a redirect refused, a body that is not JSON
        return TicketError(f"gitlab {what}: {exc.error_message}"[:400], retryable=False, system="gitlab")
    return error_for_status("gitlab", what, exc.response_code, str(exc.error_message)[:300])
