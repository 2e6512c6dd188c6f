"""Jira issues through the `jira` package (Jira Cloud, Server and Data Center).

Idempotency: each ticket carries its key's token as a label (Jira labels are free-form), so `open`
first runs `project = KEY AND labels = TOKEN AND statusCategory != Done` (through `search` on Server
and Data Center, `search/jql` on Cloud, as the package picks from `serverInfo`). Jira Cloud's search
is eventually consistent: a retry within about a second of the crash may not see the first ticket yet.

Bodies and comments go as written; Jira renders them as its own wiki markup, not Markdown.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from jira import JIRA, JIRAError
from jira.resources import Issue

from vigil.errors import TicketError
from vigil.tickets.base import (
    TicketDraft,
    TicketRef,
    check_labels,
    check_ref,
    check_text,
    error_for_status,
    idempotency_token,
    merge_labels,
    retry_after_seconds,
)
from vigil.tickets.blocking import BlockingClient
from vigil.tickets.specs import JiraTicketSpec

log = logging.getLogger(__name__)

DONE = "done"
"""The status category key of resolved statuses, whatever the workflow calls them."""


class JiraTickets:
    type: Literal["jira"] = "jira"

    def __init__(self, spec: JiraTicketSpec) -> None:
        self.spec = spec
        self._client = BlockingClient("jira", self._connect, _classify, spec.timeout_s, JIRA.close)

    def __repr__(self) -> str:
        return f"JiraTickets(project={self.spec.project!r}, url={str(self.spec.url)!r})"

    def _connect(self) -> JIRA:
        secret = self.spec.token.get_secret_value()
        auth: dict[str, Any] = (
            {"basic_auth": (self.spec.email, secret)} if self.spec.email else {"token_auth": secret}
        )
        # Asks for serverInfo: whether this is Cloud decides which search API the package calls.
        return JIRA(
            server=str(self.spec.url).rstrip("/"),
            max_retries=0,  # retrying is the workflow's, which knows what is retryable
            timeout=self.spec.timeout_s,
            **auth,
        )

    def _ref(self, client: JIRA, issue_id: str, key: str) -> TicketRef:
        url = f"{client.server_url}/browse/{key}"
        return TicketRef(system="jira", project=self.spec.project, id=issue_id, key=key, url=url)

    async def open(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        token = idempotency_token(idempotency_key)
        jql = (
            f'project = "{self.spec.project}" AND labels = "{token}" AND statusCategory != Done '
            "ORDER BY created ASC"
        )

        def work(client: JIRA) -> tuple[TicketRef, bool]:
            found = client.search_issues(jql, maxResults=1, fields=["summary"], json_result=True)
            assert isinstance(found, dict)
            for hit in found.get("issues") or []:
                return self._ref(client, str(hit["id"]), str(hit["key"])), False
            fields = {
                "project": {"key": self.spec.project},
                "issuetype": {"name": self.spec.issue_type},
                "summary": draft.title,
                "description": draft.body,
                "labels": merge_labels(list(self.spec.labels), list(draft.labels), [token]),
            }
            created = client.create_issue(fields=fields)
            return self._ref(client, str(created.id), str(created.key)), True

        ref, created = await self._client.run(f"open a ticket in {self.spec.project}", work)
        log.info(
            "ticket %s", "opened" if created else "found open", extra={"system": "jira", "ticket": ref.key}
        )
        return ref

    async def comment(self, ref: TicketRef, text: str) -> None:
        check_ref(ref, "jira")
        check_text(text)
        await self._client.run(f"comment on {ref.key}", lambda client: client.add_comment(ref.id, text))

    async def close(self, ref: TicketRef, comment: str | None = None) -> None:
        check_ref(ref, "jira")
        if comment is not None:
            check_text(comment)

        def work(client: JIRA) -> bool:
            issue = client.issue(ref.id, fields="status")
            if _category(issue) == DONE:
                return False
            if comment is not None:
                client.add_comment(ref.id, comment)
            self._transition(client, issue, self.spec.close_transition, ref)
            return True

        if await self._client.run(f"close {ref.key}", work):
            log.info("ticket closed", extra={"system": "jira", "ticket": ref.key})

    async def label(self, ref: TicketRef, labels: list[str]) -> None:
        check_ref(ref, "jira")
        wanted = check_labels(labels)

        def work(client: JIRA) -> None:
            issue = client.issue(ref.id, fields="labels")
            issue.update(update={"labels": [{"add": label} for label in wanted]})

        if wanted:
            await self._client.run(f"label {ref.key}", work)

    async def reopen(self, ref: TicketRef) -> None:
        check_ref(ref, "jira")

        def work(client: JIRA) -> None:
            issue = client.issue(ref.id, fields="status")
            if _category(issue) == DONE:
                self._transition(client, issue, self.spec.reopen_transition, ref)

        await self._client.run(f"reopen {ref.key}", work)

    def _transition(self, client: JIRA, issue: Issue, name: str, ref: TicketRef) -> None:
        available = client.transitions(issue)
        chosen = next((t for t in available if str(t["name"]).casefold() == name.casefold()), None)
        if chosen is None:
            names = ", ".join(repr(t["name"]) for t in available) or "none"
            raise TicketError(
                f"jira {ref.key}: no transition {name!r} from its status; available: {names}",
                retryable=False,
                system="jira",
            )
        client.transition_issue(issue, chosen["id"])

    async def aclose(self) -> None:
        await self._client.aclose()


def _category(issue: Issue) -> str:
    return str(issue.fields.status.statusCategory.key)


def _classify(exc: Exception, what: str) -> TicketError | None:
    if not isinstance(exc, JIRAError):
        return None
    # Built from the parts, never str(exc): that prints the request headers, credentials included.
    detail = _detail(exc.text) or f"{exc.status_code}"
    if exc.status_code is None:
        return TicketError(f"jira {what}: {detail[:300]}", retryable=False, system="jira")
    response = getattr(exc, "response", None)
    retry_after = retry_after_seconds(response.headers.get("Retry-After") if response is not None else None)
    return error_for_status("jira", what, exc.status_code, detail[:300], retry_after)


def _detail(text: Any) -> str:
    return str(text or "").strip()
