"""Jira's REST API 2 for issues, comments, labels and transitions: what the `jira` package calls.

    with JiraServer(token="jira-test", projects=["OPS"]) as jira_server:       # or: async with ...
        client = jira.JIRA(server=jira_server.base_url, token_auth="jira-test")   # calls serverInfo
        issue = client.create_issue(project="OPS", summary="Checkout errors", issuetype={"name": "Task"})
        client.add_comment(issue, "Step 1: rollout restart: done")
        issue.add_field_value("labels", "escalated")
        client.transition_issue(issue, "Done")
        jira_server.issue("OPS-1")       # the stored issue: summary, description, labels, status
        jira_server.comments("OPS-1")    # comment bodies, oldest first

Speaks Jira Server/Data Center 9 (`deploymentType: Server`), or with `cloud=True` Jira Cloud, whose
search is `search/jql` (the old `search` answers 410, as Atlassian's does since its removal): serverInfo, myself, fields, issue types,
projects (by key or id, with their issue types), issues (create, get, edit with `fields` and `update`
operations add/remove/set), search (JQL: clauses on project, labels, status and statusCategory with
`=`, `!=`, `in`, joined by AND, then an ignored ORDER BY), comments (add, list) and transitions along
the default workflow:
To Do -> In Progress -> Done, Done -> To Do (Reopen). Auth: a bearer token (`token_auth`) or basic
with the token as password. Refuses like Jira: 401, 404 `Issue Does Not Exist`, 400 with
`errorMessages` and `errors` (a missing summary, an unknown project or issue type, a transition not
valid from the issue's status).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.doubles._rest import Call, HttpError, Response, RestServer

__all__ = ["ISSUE_TYPES", "TRANSITIONS", "JiraServer", "StoredIssue"]

API = "/rest/api/2"
ISSUE = API + r"/issue/(?P<key>[^/]+)"
ISSUE_TYPES = [("10001", "Task"), ("10002", "Bug"), ("10003", "Incident")]
STATUSES = {"To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"), "Done": ("10001", "done")}
CATEGORY_NAMES = {"new": "to do", "indeterminate": "in progress", "done": "done"}
TRANSITIONS = [
    ("11", "Start Progress", ("To Do",), "In Progress"),
    ("21", "Stop Progress", ("In Progress",), "To Do"),
    ("31", "Done", ("To Do", "In Progress"), "Done"),
    ("41", "Reopen", ("Done",), "To Do"),
]
JQL_CLAUSE = re.compile(
    r'\s*(?P<field>\w+)\s*(?P<op>!=|=|\bnot in\b|\bin\b)\s*(?P<value>\([^)]*\)|"[^"]*"|[^\s()]+)\s*', re.I
)
USER = {"name": "vigil-bot", "key": "vigil-bot", "displayName": "Vigil", "active": True}


@dataclass
class StoredIssue:
    id: str
    key: str
    project: str
    summary: str
    description: str | None
    issue_type: str
    labels: list[str]
    status: str = "To Do"
    created: str = "2026-12-06T10:00:00.000+0000"
    comments: list[dict[str, Any]] = field(default_factory=list)


def _jira_error(
    status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None
) -> HttpError:
    return HttpError(status, {"errorMessages": messages or [], "errors": errors or {}})


class JiraServer(RestServer):
    def __init__(
        self,
        *,
        token: str | None = None,
        projects: list[str] | tuple[str, ...] = (),
        cloud: bool = False,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.token = token
        self.cloud = cloud
        self.projects: dict[str, str] = {key: str(10000 + i) for i, key in enumerate(projects)}
        self.stored: dict[str, StoredIssue] = {}
        self.transitions_done: list[tuple[str, str]] = []
        """(issue key, transition name) in order."""
        self._next_comment = 20000
        self.route("GET", API + "/serverInfo", self._server_info)
        self.route(
            "GET",
            API + "/myself",
            lambda call: USER | {"self": f"{self.base_url}{API}/user?username=vigil-bot"},
        )
        self.route("GET", API + "/field", self._fields)
        self.route("GET", API + "/issuetype", lambda call: self._issue_types())
        self.route("GET", API + r"/project/(?P<project>[^/]+)", self._get_project)
        self.route("POST", API + "/issue", self._create_issue)
        self.route("GET", API + "/search", self._search)
        self.route("GET", API + "/search/jql", self._search_jql)
        self.route("GET", ISSUE, self._get_issue)
        self.route("PUT", ISSUE, self._edit_issue)
        self.route("GET", ISSUE + "/comment", self._list_comments)
        self.route("POST", ISSUE + "/comment", self._add_comment)
        self.route("GET", ISSUE + "/transitions", self._list_transitions)
        self.route("POST", ISSUE + "/transitions", self._transition)

    def issue(self, key: str) -> StoredIssue:
        with self._cond:
            return self.stored[key]

    def comments(self, key: str) -> list[str]:
        with self._cond:
            return [c["body"] for c in self.stored[key].comments]

    # --- the API -----------------------------------------------------------------------------

    def failure_body(self, status: int) -> bytes:
        return orjson.dumps({"errorMessages": [f"scripted failure {status}"], "errors": {}})

    def not_found(self, method: str, path: str) -> HttpError:
        return HttpError(404, {"message": "null for uri: " + path, "status-code": 404})

    def check_auth(self, call: Call) -> None:
        if self.token is None:
            return
        scheme, _, credentials = call.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and credentials == self.token:
            return
        if (
            scheme == "Basic"
            and base64.b64decode(credentials).decode(errors="replace").partition(":")[2] == self.token
        ):
            return
        raise _jira_error(
            401, ["You are not authenticated. Authentication required to perform this operation."]
        )

    def _server_info(self, call: Call) -> Any:
        return {
            "baseUrl": self.base_url,
            "version": "9.12.2",
            "versionNumbers": [9, 12, 2],
            "deploymentType": "Cloud" if self.cloud else "Server",
            "buildNumber": 9120002,
            "serverTitle": "Jira",
        }

    def _fields(self, call: Call) -> Any:
        names = [
            ("summary", "Summary"),
            ("description", "Description"),
            ("labels", "Labels"),
            ("status", "Status"),
        ]
        names += [("issuetype", "Issue Type"), ("project", "Project"), ("comment", "Comment")]
        return [{"id": i, "name": n, "custom": False, "clauseNames": [i]} for i, n in names]

    def _issue_types(self) -> list[dict[str, Any]]:
        return [
            {"self": f"{self.base_url}{API}/issuetype/{i}", "id": i, "name": n, "subtask": False}
            for i, n in ISSUE_TYPES
        ]

    def _project_view(self, key: str) -> dict[str, Any]:
        project_id = self.projects[key]
        return {
            "self": f"{self.base_url}{API}/project/{project_id}",
            "id": project_id,
            "key": key,
            "name": key,
        }

    def _get_project(self, call: Call) -> Any:
        ref = call.params["project"]
        for key, project_id in self.projects.items():
            if ref in (key, project_id):
                return self._project_view(key) | {"issueTypes": self._issue_types()}
        raise _jira_error(404, [f"No project could be found with key '{ref}'."])

    def _find(self, call: Call) -> StoredIssue:
        ref = call.params["key"]
        for issue in self.stored.values():
            if ref in (issue.key, issue.id):
                return issue
        raise _jira_error(404, ["Issue Does Not Exist"])

    def _status_view(self, name: str) -> dict[str, Any]:
        status_id, category = STATUSES[name]
        return {
            "self": f"{self.base_url}{API}/status/{status_id}",
            "id": status_id,
            "name": name,
            "statusCategory": {"key": category},
        }

    def _comment_view(self, issue: StoredIssue, comment: dict[str, Any]) -> dict[str, Any]:
        return comment | {
            "self": f"{self.base_url}{API}/issue/{issue.id}/comment/{comment['id']}",
            "author": USER,
        }

    def _issue_view(self, issue: StoredIssue) -> dict[str, Any]:
        type_id = next(i for i, n in ISSUE_TYPES if n == issue.issue_type)
        comments = [self._comment_view(issue, c) for c in issue.comments]
        fields = {
            "summary": issue.summary,
            "description": issue.description,
            "labels": list(issue.labels),
            "status": self._status_view(issue.status),
            "resolution": {"name": "Done"} if issue.status == "Done" else None,
            "issuetype": {"id": type_id, "name": issue.issue_type, "subtask": False},
            "project": self._project_view(issue.project),
            "created": issue.created,
            "updated": issue.created,
            "comment": {
                "comments": comments,
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            },
        }
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.base_url}{API}/issue/{issue.id}",
            "fields": fields,
        }

    def _create_issue(self, call: Call) -> Response:
        fields = (call.json() or {}).get("fields") or {}
        project = fields.get("project") or {}
        key = next(
            (k for k, i in self.projects.items() if project.get("key") == k or project.get("id") == i), None
        )
        if key is None:
            raise _jira_error(400, errors={"project": "valid project is required"})
        wanted = fields.get("issuetype") or {}
        type_name = next(
            (n for i, n in ISSUE_TYPES if wanted.get("id") == i or wanted.get("name") == n), None
        )
        if type_name is None:
            raise _jira_error(400, errors={"issuetype": "valid issue type is required"})
        if not fields.get("summary"):
            raise _jira_error(400, errors={"summary": "You must specify a summary of the issue."})
        number = 1 + sum(1 for i in self.stored.values() if i.project == key)
        issue_id = str(10100 + len(self.stored))
        issue = StoredIssue(
            issue_id,
            f"{key}-{number}",
            key,
            fields["summary"],
            fields.get("description"),
            type_name,
            list(fields.get("labels", [])),
        )
        self.stored[issue.key] = issue
        return Response(
            201, {"id": issue.id, "key": issue.key, "self": f"{self.base_url}{API}/issue/{issue.id}"}
        )

    def _search(self, call: Call) -> Any:
        if self.cloud:
            raise _jira_error(410, ["The requested API has been removed. Please use /rest/api/3/search/jql."])
        found = self._matching(call.arg("jql") or "")
        start, most = int(call.arg("startAt") or 0), int(call.arg("maxResults") or 50)
        page = [self._issue_view(i) for i in found[start : start + most]]
        return {"startAt": start, "maxResults": most, "total": len(found), "issues": page}

    def _search_jql(self, call: Call) -> Any:
        if not self.cloud:
            raise self.not_found(call.method, call.path)
        found = self._matching(call.arg("jql") or "")[: int(call.arg("maxResults") or 50)]
        return {"issues": [self._issue_view(i) for i in found], "isLast": True}

    def _matching(self, jql: str) -> list[StoredIssue]:
        where = re.split(r"\border\s+by\b", jql, maxsplit=1, flags=re.I)[0].strip()
        clauses = [c for c in re.split(r"\s+and\s+", where, flags=re.I) if c.strip()]
        return [i for i in self.stored.values() if all(self._holds(i, clause) for clause in clauses)]

    def _holds(self, issue: StoredIssue, clause: str) -> bool:
        parsed = JQL_CLAUSE.fullmatch(clause)
        if parsed is None:
            raise _jira_error(400, [f"The double cannot parse the JQL clause '{clause}'."])
        raw = parsed["value"].strip("()")
        wanted = {v.strip().strip('"').lower() for v in raw.split(",")}
        actual = {
            "project": {issue.project.lower()},
            "labels": {label.lower() for label in issue.labels},
            "status": {issue.status.lower()},
            "statuscategory": {STATUSES[issue.status][1], CATEGORY_NAMES[STATUSES[issue.status][1]]},
        }.get(parsed["field"].lower())
        if actual is None:
            raise _jira_error(
                400, [f"Field '{parsed['field']}' does not exist or you do not have permission."]
            )
        hit = bool(actual & wanted)
        return not hit if parsed["op"].lower() in ("!=", "not in") else hit

    def _get_issue(self, call: Call) -> Any:
        return self._issue_view(self._find(call))

    def _edit_issue(self, call: Call) -> Response:
        issue = self._find(call)
        body = call.json() or {}
        fields, update = body.get("fields") or {}, body.get("update") or {}
        for name in set(fields) | set(update):
            if name not in ("summary", "description", "labels", "comment"):
                raise _jira_error(
                    400,
                    errors={
                        name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                    },
                )
        if "summary" in fields:
            issue.summary = fields["summary"]
        if "description" in fields:
            issue.description = fields["description"]
        if "labels" in fields:
            issue.labels = list(fields["labels"])
        for operation in update.get("labels", []):
            if "set" in operation:
                issue.labels = list(operation["set"])
            if "add" in operation and operation["add"] not in issue.labels:
                issue.labels.append(operation["add"])
            if "remove" in operation and operation["remove"] in issue.labels:
                issue.labels.remove(operation["remove"])
        for operation in update.get("comment", []):
            self._store_comment(issue, operation["add"]["body"])
        return Response(204, b"")

    def _store_comment(self, issue: StoredIssue, body: Any) -> dict[str, Any]:
        if not isinstance(body, str) or not body.strip():
            raise _jira_error(400, errors={"comment": "Comment body can not be empty!"})
        self._next_comment += 1
        comment = {
            "id": str(self._next_comment),
            "body": body,
            "created": issue.created,
            "updated": issue.created,
        }
        issue.comments.append(comment)
        return comment

    def _list_comments(self, call: Call) -> Any:
        issue = self._find(call)
        comments = [self._comment_view(issue, c) for c in issue.comments]
        return {"startAt": 0, "maxResults": len(comments), "total": len(comments), "comments": comments}

    def _add_comment(self, call: Call) -> Response:
        issue = self._find(call)
        comment = self._store_comment(issue, (call.json() or {}).get("body"))
        return Response(201, self._comment_view(issue, comment))

    def _available(self, issue: StoredIssue) -> list[tuple[str, str, tuple[str, ...], str]]:
        return [t for t in TRANSITIONS if issue.status in t[2]]

    def _list_transitions(self, call: Call) -> Any:
        issue = self._find(call)
        transitions = [
            {"id": t_id, "name": name, "to": self._status_view(to), "hasScreen": False, "isGlobal": False}
            for t_id, name, _, to in self._available(issue)
            if call.arg("transitionId") in (None, t_id)
        ]
        return {"expand": "transitions", "transitions": transitions}

    def _transition(self, call: Call) -> Response:
        issue = self._find(call)
        body = call.json() or {}
        wanted = str((body.get("transition") or {}).get("id", ""))
        found = next((t for t in self._available(issue) if t[0] == wanted), None)
        if found is None:
            raise _jira_error(400, [f"Transition id '{wanted}' is not valid for this issue."])
        for operation in (body.get("update") or {}).get("comment", []):
            self._store_comment(issue, operation["add"]["body"])
        issue.status = found[3]
        self.transitions_done.append((issue.key, found[1]))
        return Response(204, b"")
