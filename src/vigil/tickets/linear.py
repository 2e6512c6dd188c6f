"""Linear issues through its GraphQL API, over httpx.

Idempotency: the description ends with a short footer holding the key's token (Linear keeps no
hidden HTML), so `open` asks for the team's issues not completed or canceled whose description
contains it before creating one. Closing moves the issue to the team's first `completed` state,
reopening to its first `unstarted` one; labels are found by name (the team's or the workspace's)
and created in the team when missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx

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
from vigil.tickets.specs import LinearTicketSpec

log = logging.getLogger(__name__)

TEAM = """query VigilTeam($key: String!) {
  teams(filter: {key: {eq: $key}}) { nodes { id key states { nodes { id type position } } } }
}"""
FIND = """query VigilFind($filter: IssueFilter) { issues(first: 1, filter: $filter) { nodes { id identifier url } } }"""
CREATE = """mutation VigilOpen($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url } }
}"""
COMMENT = (
    """mutation VigilComment($input: CommentCreateInput!) { commentCreate(input: $input) { success } }"""
)
STATE = """query VigilState($id: String!) { issue(id: $id) { state { type } } }"""
UPDATE = """mutation VigilUpdate($id: String!, $input: IssueUpdateInput!) { issueUpdate(id: $id, input: $input) { success } }"""
LABELS = """query VigilLabels($filter: IssueLabelFilter) {
  issueLabels(first: 250, filter: $filter) { nodes { id name team { id } } }
}"""
CREATE_LABEL = """mutation VigilLabel($input: IssueLabelCreateInput!) {
  issueLabelCreate(input: $input) { success issueLabel { id name } }
}"""
CLOSED_TYPES = ("completed", "canceled")

Result = TypeVar("Result")


@dataclass(frozen=True)
class _Team:
    id: str
    completed_state: str
    open_state: str


class LinearTickets:
    type: Literal["linear"] = "linear"

    def __init__(self, spec: LinearTicketSpec, client: httpx.AsyncClient | None = None) -> None:
        self.spec = spec
        self._http = client if client is not None else httpx.AsyncClient()
        self._owns_http = client is None
        self._team: _Team | None = None
        self._label_ids: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"LinearTickets(team={self.spec.team!r}, url={str(self.spec.url)!r})"

    async def open(self, draft: TicketDraft, *, idempotency_key: str) -> TicketRef:
        token = idempotency_token(idempotency_key)
        what = f"open a ticket in team {self.spec.team}"
        return await self._within(what, self._open(what, draft, token))

    async def comment(self, ref: TicketRef, text: str) -> None:
        check_ref(ref, "linear")
        check_text(text)
        what = f"comment on {ref.key}"
        await self._within(what, self._comment(what, ref, text))

    async def close(self, ref: TicketRef, comment: str | None = None) -> None:
        check_ref(ref, "linear")
        if comment is not None:
            check_text(comment)
        what = f"close {ref.key}"
        await self._within(what, self._close(what, ref, comment))

    async def label(self, ref: TicketRef, labels: list[str]) -> None:
        check_ref(ref, "linear")
        wanted = check_labels(labels)
        if wanted:
            what = f"label {ref.key}"
            await self._within(what, self._label(what, ref, wanted))

    async def reopen(self, ref: TicketRef) -> None:
        check_ref(ref, "linear")
        what = f"reopen {ref.key}"
        await self._within(what, self._reopen(what, ref))

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- the operations, each under one deadline ---------------------------------------------

    async def _within(self, what: str, work: Awaitable[Result]) -> Result:
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                return await work
        except TimeoutError:
            timeout = self.spec.timeout_s
            raise TicketError(
                f"linear {what}: no answer within {timeout:g}s", retryable=True, system="linear"
            ) from None

    async def _open(self, what: str, draft: TicketDraft, token: str) -> TicketRef:
        team = await self._get_team(what)
        where = {
            "team": {"id": {"eq": team.id}},
            "description": {"containsIgnoreCase": token},
            "state": {"type": {"nin": list(CLOSED_TYPES)}},
        }
        found = (await self._gql(what, FIND, filter=where))["issues"]["nodes"]
        if found:
            ref = self._ref(found[0])
            log.info("ticket found open", extra={"system": "linear", "ticket": ref.key})
            return ref
        footer = f"---\nVigil reference `{token}`"
        labels = merge_labels(list(self.spec.labels), list(draft.labels))
        data = {
            "teamId": team.id,
            "title": draft.title,
            "description": f"{draft.body}\n\n{footer}" if draft.body else footer,
            "labelIds": await self._labels(what, team, labels),
        }
        result = (await self._gql(what, CREATE, input=data))["issueCreate"]
        self._check_success(what, result)
        ref = self._ref(result["issue"])
        log.info("ticket opened", extra={"system": "linear", "ticket": ref.key})
        return ref

    async def _comment(self, what: str, ref: TicketRef, text: str) -> None:
        result = await self._gql(what, COMMENT, input={"issueId": ref.id, "body": text})
        self._check_success(what, result["commentCreate"])

    async def _close(self, what: str, ref: TicketRef, comment: str | None) -> None:
        team = await self._get_team(what)
        if await self._state_type(what, ref) in CLOSED_TYPES:
            return
        if comment is not None:
            await self._comment(what, ref, comment)
        await self._update(what, ref, {"stateId": team.completed_state})
        log.info("ticket closed", extra={"system": "linear", "ticket": ref.key})

    async def _label(self, what: str, ref: TicketRef, labels: list[str]) -> None:
        ids = await self._labels(what, await self._get_team(what), labels)
        await self._update(what, ref, {"addedLabelIds": ids})

    async def _reopen(self, what: str, ref: TicketRef) -> None:
        team = await self._get_team(what)
        if await self._state_type(what, ref) in CLOSED_TYPES:
            await self._update(what, ref, {"stateId": team.open_state})

    # --- helpers -----------------------------------------------------------------------------

    def _ref(self, issue: dict[str, Any]) -> TicketRef:
        return TicketRef(
            system="linear",
            project=self.spec.team,
            id=str(issue["id"]),
            key=str(issue["identifier"]),
            url=str(issue["url"]),
        )

    async def _state_type(self, what: str, ref: TicketRef) -> str:
        return str((await self._gql(what, STATE, id=ref.id))["issue"]["state"]["type"])

    async def _update(self, what: str, ref: TicketRef, changes: dict[str, Any]) -> None:
        self._check_success(what, (await self._gql(what, UPDATE, id=ref.id, input=changes))["issueUpdate"])

    async def _get_team(self, what: str) -> _Team:
        if self._team is not None:
            return self._team
        teams = (await self._gql(what, TEAM, key=self.spec.team))["teams"]["nodes"]
        if not teams:
            raise TicketError(
                f"linear {what}: no team with key {self.spec.team!r}", retryable=False, system="linear"
            )
        states = sorted(teams[0]["states"]["nodes"], key=lambda s: s.get("position") or 0)

        def first(*kinds: str) -> str:
            for kind in kinds:
                for state in states:
                    if state["type"] == kind:
                        return str(state["id"])
            raise TicketError(
                f"linear {what}: team {self.spec.team} has no {kinds[0]} workflow state",
                retryable=False,
                system="linear",
            )

        self._team = _Team(str(teams[0]["id"]), first("completed"), first("unstarted", "backlog", "started"))
        return self._team

    async def _labels(self, what: str, team: _Team, names: list[str]) -> list[str]:
        """The ids of labels `names`, the team's or the workspace's, created in the team if missing."""
        async with self._lock:
            missing = [n for n in names if n.casefold() not in self._label_ids]
            if missing:
                where = {"or": [{"name": {"eqIgnoreCase": name}} for name in missing]}
                for label in (await self._gql(what, LABELS, filter=where))["issueLabels"]["nodes"]:
                    owner = (label.get("team") or {}).get("id")
                    if owner in (None, team.id):
                        self._label_ids.setdefault(str(label["name"]).casefold(), str(label["id"]))
            for name in names:
                if name.casefold() not in self._label_ids:
                    made = (await self._gql(what, CREATE_LABEL, input={"name": name, "teamId": team.id}))[
                        "issueLabelCreate"
                    ]
                    self._check_success(what, made)
                    self._label_ids[name.casefold()] = str(made["issueLabel"]["id"])
            return [self._label_ids[name.casefold()] for name in names]

    def _check_success(self, what: str, payload: dict[str, Any] | None) -> None:
        if not payload or not payload.get("success"):
            raise TicketError(
                f"linear {what}: Linear answered success=false", retryable=False, system="linear"
            )

    async def _gql(self, what: str, query: str, **variables: Any) -> dict[str, Any]:
        timeout = self.spec.timeout_s
        headers = {"Authorization": self.spec.api_key.get_secret_value(), "Content-Type": "application/json"}
        try:
            response = await self._http.post(
                str(self.spec.url),
                json={"query": query, "variables": variables},
                headers=headers,
                timeout=timeout,
            )
        except httpx.TimeoutException:
            raise TicketError(
                f"linear {what}: no answer within {timeout:g}s", retryable=True, system="linear"
            ) from None
        except httpx.TransportError as exc:
            raise error_for_status("linear", what, None, f"{type(exc).__name__}: {exc}") from None
        return _data(what, response)


def _data(what: str, response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        found = [e for e in errors if isinstance(e, dict)]
        codes = {str((e.get("extensions") or {}).get("code", "")) for e in found}
        message = "; ".join(str(e.get("message", "")) for e in found)[:300]
        if "RATELIMITED" in codes:  # Linear answers 400 when rate limited
            raise TicketError(
                f"linear {what}: rate limited: {message}",
                retryable=True,
                status=status,
                system="linear",
                retry_after=retry_after,
            )
        if status == 200:  # understood and refused: bad input, an unknown entity
            raise TicketError(f"linear {what}: {message}", retryable=False, status=status, system="linear")
        raise error_for_status("linear", what, status, message, retry_after)
    if not response.is_success:
        raise error_for_status("linear", what, status, response.text[:300], retry_after)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise TicketError(
            f"linear {what}: an answer without data", retryable=True, status=status, system="linear"
        )
    return data
