"""Linear's GraphQL API (`POST /graphql`) for issues, comments, workflow states and labels.

    with LinearServer(api_key="lin_api_test", teams={"OPS": "Operations"}) as linear:   # or: async with
        linear.add_label("incident"); linear.add_label("escalated", team="OPS")
        # POST /graphql {"query": "mutation($input: IssueCreateInput!) { issueCreate(input: $input) {
        #   success issue { id identifier } } }", "variables": {"input": {"teamId": ..., "title": ...}}}
        linear.issue("OPS-1")       # the stored issue: title, description, state name, label names
        linear.comments("OPS-1")    # comment bodies, oldest first
        linear.operations           # root fields asked, in order ("teams", "issueCreate", ...)

Each team gets Linear's default workflow: Backlog, Todo, In Progress, Done, Canceled (types backlog,
unstarted, started, completed, canceled); new issues start in Todo. Root fields: viewer, teams, team(id),
workflowStates, issueLabels, issues (each taking `filter` with eq, neq, in, nin, eqIgnoreCase,
containsIgnoreCase, nested relations, `some`, and/or), issue(id or identifier); issueCreate, issueUpdate
(stateId, labelIds, addedLabelIds, removedLabelIds, title, description, priority), issueAddLabel,
issueRemoveLabel, commentCreate, issueLabelCreate. Answers hold only what the query selected;
selecting a field the double lacks is a validation error, like one the schema lacks. Auth as Linear
takes it: `Authorization: <API key>` or `Bearer <OAuth token>`; otherwise 401 with an
AUTHENTICATION_ERROR. Errors follow GraphQL: 400 for parse and validation errors, 200 with
`data: null` and an INVALID_INPUT error for unknown entities and bad input.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.doubles._graphql import GraphQLError, parse_operation, select
from tests.doubles._rest import Call, HttpError, Response, RestServer, utc_iso

__all__ = ["DEFAULT_STATES", "LinearServer", "StoredIssue"]

DEFAULT_STATES = [
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("Done", "completed"),
    ("Canceled", "canceled"),
]
VIEWER = {"__typename": "User", "id": "user-vigil", "name": "Vigil", "email": "vigil@example.test"}


@dataclass
class StoredIssue:
    id: str
    identifier: str
    team: str
    title: str
    description: str | None
    state: str
    labels: list[str]
    priority: int = 0
    created_at: str = field(default_factory=utc_iso)
    comments: list[dict[str, Any]] = field(default_factory=list)


def _invalid(message: str) -> GraphQLError:
    return GraphQLError(message, "INVALID_INPUT", 200)


def _compare(actual: Any, condition: Mapping[str, Any]) -> bool:
    checks = {
        "eq": lambda v: actual == v,
        "neq": lambda v: actual != v,
        "in": lambda v: actual in v,
        "nin": lambda v: actual not in v,
        "eqIgnoreCase": lambda v: str(actual).lower() == str(v).lower(),
        "containsIgnoreCase": lambda v: str(v).lower() in str(actual).lower(),
        "null": lambda v: (actual is None) == v,
    }
    for op, wanted in condition.items():
        if op not in checks:
            raise GraphQLError(f'Field "{op}" is not defined by the double\'s filter comparators.')
        if not checks[op](wanted):
            return False
    return True


def matches(view: Mapping[str, Any], condition: Mapping[str, Any] | None) -> bool:
    """A Linear filter on a view: comparators on fields, nested filters on relations and collections."""
    for key, wanted in (condition or {}).items():
        if key == "and":
            if not all(matches(view, c) for c in wanted):
                return False
            continue
        if key == "or":
            if not any(matches(view, c) for c in wanted):
                return False
            continue
        if key not in view:
            raise GraphQLError(f'Field "{key}" is not defined by type "{view["__typename"]}Filter".')
        actual = view[key]({}) if callable(view[key]) else view[key]
        if isinstance(actual, dict) and "nodes" in actual:
            nodes = actual["nodes"]
            if "every" in wanted:
                ok = all(matches(n, wanted["every"]) for n in nodes)
            else:
                ok = any(matches(n, wanted.get("some", wanted)) for n in nodes)
        elif isinstance(actual, dict):
            ok = matches(actual, wanted)
        else:
            ok = _compare(actual, wanted)
        if not ok:
            return False
    return True


class LinearServer(RestServer):
    def __init__(
        self, *, api_key: str | None = None, teams: Mapping[str, str] | None = None, port: int = 0
    ) -> None:
        super().__init__(port=port)
        self.api_key = api_key
        self.teams: dict[str, dict[str, Any]] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.stored: dict[str, StoredIssue] = {}
        self.operations: list[str] = []
        for key, name in (teams or {"ENG": "Engineering"}).items():
            self.add_team(key, name)
        self.route("POST", r"/graphql", self._graphql)

    def add_team(self, key: str, name: str) -> str:
        with self._cond:
            team_id = str(uuid.uuid4())
            self.teams[team_id] = {"id": team_id, "key": key, "name": name}
            for position, (state, kind) in enumerate(DEFAULT_STATES):
                state_id = str(uuid.uuid4())
                self.states[state_id] = {
                    "id": state_id,
                    "name": state,
                    "type": kind,
                    "position": position,
                    "team": team_id,
                }
            return team_id

    def add_label(self, name: str, *, team: str | None = None) -> str:
        """A label of one team (by key) or, without a team, of the workspace."""
        with self._cond:
            team_id = next(t["id"] for t in self.teams.values() if t["key"] == team) if team else None
            label_id = str(uuid.uuid4())
            self.labels[label_id] = {"id": label_id, "name": name, "color": "#5e6ad2", "team": team_id}
            return label_id

    def issue(self, identifier: str) -> StoredIssue:
        with self._cond:
            return self.stored[identifier]

    def comments(self, identifier: str) -> list[str]:
        with self._cond:
            return [c["body"] for c in self.stored[identifier].comments]

    # --- views -------------------------------------------------------------------------------

    def _team_view(self, team_id: str) -> dict[str, Any]:
        team = self.teams[team_id]
        return {
            "__typename": "Team",
            **team,
            "states": lambda args: self._connection(
                [self._state_view(s) for s in self.states.values() if s["team"] == team_id], args
            ),
            "labels": lambda args: self._connection(
                [
                    self._label_view(lid)
                    for lid, label in self.labels.items()
                    if label["team"] in (None, team_id)
                ],
                args,
            ),
            "issues": lambda args: self._connection(
                [self._issue_view(i) for i in self.stored.values() if i.team == team_id], args
            ),
        }

    def _connection(self, nodes: list[dict[str, Any]], args: Mapping[str, Any]) -> dict[str, Any]:
        chosen = [n for n in nodes if matches(n, args.get("filter"))][: args.get("first") or 50]
        page = {"__typename": "PageInfo", "hasNextPage": False, "endCursor": None}
        return {"__typename": "Connection", "nodes": chosen, "pageInfo": page}

    def _state_view(self, state: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in state.items() if k != "team"}
        return {"__typename": "WorkflowState", **fields, "team": lambda args: self._team_view(state["team"])}

    def _label_view(self, label_id: str) -> dict[str, Any]:
        label = self.labels[label_id]
        fields = {k: v for k, v in label.items() if k != "team"}
        team = label["team"]
        return {
            "__typename": "IssueLabel",
            **fields,
            "team": lambda args: self._team_view(team) if team else None,
        }

    def _state_of(self, issue: StoredIssue) -> dict[str, Any]:
        return next(s for s in self.states.values() if s["team"] == issue.team and s["name"] == issue.state)

    def _issue_view(self, issue: StoredIssue) -> dict[str, Any]:
        label_ids = [
            lid for name in issue.labels for lid, label in self.labels.items() if label["name"] == name
        ][: len(issue.labels)]
        return {
            "__typename": "Issue",
            "id": issue.id,
            "identifier": issue.identifier,
            "number": int(issue.identifier.rsplit("-", 1)[1]),
            "title": issue.title,
            "description": issue.description,
            "priority": issue.priority,
            "url": f"{self.base_url}/issue/{issue.identifier}",
            "createdAt": issue.created_at,
            "labelIds": label_ids,
            "state": lambda args: self._state_view(self._state_of(issue)),
            "team": lambda args: self._team_view(issue.team),
            "labels": lambda args: self._connection([self._label_view(lid) for lid in label_ids], args),
            "comments": lambda args: self._connection(
                [self._comment_view(issue, c) for c in issue.comments], args
            ),
        }

    def _comment_view(self, issue: StoredIssue, comment: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/issue/{issue.identifier}#comment-{comment['id'][:8]}"
        return {
            "__typename": "Comment",
            **comment,
            "url": url,
            "user": VIEWER,
            "issue": lambda args: self._issue_view(issue),
        }

    # --- resolvers ---------------------------------------------------------------------------

    def _find_issue(self, ref: Any) -> StoredIssue:
        for issue in self.stored.values():
            if ref in (issue.id, issue.identifier):
                return issue
        raise _invalid("Entity not found: Issue")

    def _label_names(self, issue_team: str, ids: Any) -> list[str]:
        names = []
        for label_id in ids or []:
            label = self.labels.get(label_id)
            if label is None or label["team"] not in (None, issue_team):
                raise _invalid("Entity not found: IssueLabel")
            names.append(label["name"])
        return names

    def _state_name(self, team_id: str, state_id: Any) -> str:
        state = self.states.get(state_id)
        if state is None or state["team"] != team_id:
            raise _invalid("Entity not found: WorkflowState")
        return str(state["name"])

    def _payload(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"__typename": f"{kind}Payload", "success": True, "lastSyncId": len(self.operations), **fields}

    def _issue_create(self, args: Mapping[str, Any]) -> Any:
        data = args.get("input") or {}
        team_id = data.get("teamId")
        if team_id not in self.teams:
            raise _invalid("Argument Validation Error: teamId must be a UUID of a team")
        if not data.get("title"):
            raise _invalid("Argument Validation Error: title should not be empty")
        state = self._state_name(team_id, data["stateId"]) if data.get("stateId") else "Todo"
        number = 1 + sum(1 for i in self.stored.values() if i.team == team_id)
        issue = StoredIssue(
            str(uuid.uuid4()),
            f"{self.teams[team_id]['key']}-{number}",
            team_id,
            data["title"],
            data.get("description"),
            state,
            self._label_names(team_id, data.get("labelIds")),
            int(data.get("priority") or 0),
        )
        self.stored[issue.identifier] = issue
        return self._payload("Issue", issue=self._issue_view(issue))

    def _issue_update(self, args: Mapping[str, Any]) -> Any:
        issue = self._find_issue(args.get("id"))
        data = args.get("input") or {}
        if "stateId" in data:
            issue.state = self._state_name(issue.team, data["stateId"])
        for key in ("title", "description"):
            if key in data:
                setattr(issue, key, data[key])
        if "priority" in data:
            issue.priority = int(data["priority"])
        if "labelIds" in data:
            issue.labels = self._label_names(issue.team, data["labelIds"])
        added = [n for n in self._label_names(issue.team, data.get("addedLabelIds")) if n not in issue.labels]
        removed = set(self._label_names(issue.team, data.get("removedLabelIds")))
        issue.labels = [n for n in issue.labels + added if n not in removed]
        return self._payload("Issue", issue=self._issue_view(issue))

    def _label_change(self, args: Mapping[str, Any], *, add: bool) -> Any:
        issue = self._find_issue(args.get("id"))
        [name] = self._label_names(issue.team, [args.get("labelId")])
        if add and name not in issue.labels:
            issue.labels.append(name)
        if not add and name in issue.labels:
            issue.labels.remove(name)
        return self._payload("Issue", issue=self._issue_view(issue))

    def _comment_create(self, args: Mapping[str, Any]) -> Any:
        data = args.get("input") or {}
        issue = self._find_issue(data.get("issueId"))
        if not data.get("body"):
            raise _invalid("Argument Validation Error: body should not be empty")
        comment = {"id": str(uuid.uuid4()), "body": data["body"], "createdAt": utc_iso()}
        issue.comments.append(comment)
        return self._payload("Comment", comment=self._comment_view(issue, comment))

    def _label_create(self, args: Mapping[str, Any]) -> Any:
        data = args.get("input") or {}
        team = self.teams.get(data.get("teamId") or "")
        label_id = self.add_label(str(data.get("name")), team=team["key"] if team else None)
        return self._payload("IssueLabel", issueLabel=self._label_view(label_id))

    def _root(self, kind: str, name: str) -> Any:
        queries: dict[str, Any] = {
            "viewer": lambda args: VIEWER,
            "teams": lambda args: self._connection([self._team_view(t) for t in self.teams], args),
            "team": lambda args: (
                self._team_view(args["id"])
                if args.get("id") in self.teams
                else _raise(_invalid("Entity not found: Team"))
            ),
            "workflowStates": lambda args: self._connection(
                [self._state_view(s) for s in self.states.values()], args
            ),
            "issueLabels": lambda args: self._connection(
                [self._label_view(lid) for lid in self.labels], args
            ),
            "issues": lambda args: self._connection(
                [self._issue_view(i) for i in self.stored.values()], args
            ),
            "issue": lambda args: self._issue_view(self._find_issue(args.get("id"))),
        }
        mutations: dict[str, Any] = {
            "issueCreate": self._issue_create,
            "issueUpdate": self._issue_update,
            "issueAddLabel": lambda args: self._label_change(args, add=True),
            "issueRemoveLabel": lambda args: self._label_change(args, add=False),
            "commentCreate": self._comment_create,
            "issueLabelCreate": self._label_create,
        }
        table = mutations if kind == "mutation" else queries
        if name not in table:
            raise GraphQLError(
                f'Cannot query field "{name}" on type "{"Mutation" if kind == "mutation" else "Query"}".'
            )
        return table[name]

    def failure_body(self, status: int) -> bytes:
        error = {"message": f"scripted failure {status}", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        return orjson.dumps({"errors": [error]})

    def check_auth(self, call: Call) -> None:
        if self.api_key is None:
            return
        presented = call.headers.get("authorization", "").removeprefix("Bearer ")
        if presented != self.api_key:
            error = {
                "message": "Authentication required, not authenticated",
                "extensions": {"code": "AUTHENTICATION_ERROR", "type": "authentication error"},
            }
            raise HttpError(401, {"errors": [error]})

    def _graphql(self, call: Call) -> Response:
        request = call.json()
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return Response(
                400,
                {
                    "errors": [
                        {"message": "Must provide query string.", "extensions": {"code": "BAD_REQUEST"}}
                    ]
                },
            )
        try:
            operation = parse_operation(
                request["query"], request.get("variables") or {}, request.get("operationName")
            )
            resolvers = [(f, self._root(operation.kind, f.name)) for f in operation.fields]
            data: dict[str, Any] = {}
            for root_field, resolve in resolvers:
                self.operations.append(root_field.name)
                data[root_field.key] = select(resolve, root_field)
        except GraphQLError as exc:
            error = {"message": exc.message, "extensions": {"code": exc.code}}
            return Response(
                exc.status, {"data": None, "errors": [error]} if exc.status == 200 else {"errors": [error]}
            )
        return Response(200, {"data": data})


def _raise(error: Exception) -> Any:
    raise error
