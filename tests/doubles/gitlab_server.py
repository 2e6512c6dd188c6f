"""GitLab's REST API v4 for project issues and notes: what a ticketing step does through python-gitlab.

    with GitLabServer(token="glpat-test", projects=["acme/shop"]) as gl:      # or: async with ...
        client = gitlab.Gitlab(gl.base_url, private_token="glpat-test")
        issue = client.projects.get("acme/shop").issues.create({"title": "Checkout errors", "labels": ["incident"]})
        issue.notes.create({"body": "Step 1: rollout restart: done"})
        issue.labels = [*issue.labels, "escalated"]; issue.state_event = "close"; issue.save()
        gl.issue("acme/shop", 1)          # the stored issue: title, description, state, labels
        gl.notes("acme/shop", 1)          # note bodies, oldest first

Projects are found by id or by URL-encoded path (`acme%2Fshop`). Issues: create, list (`state`,
`labels`), get, edit (`title`, `description`, `labels`, `add_labels`, `remove_labels` as lists or
comma-separated, `state_event` close/reopen); notes: create, list. Pagination headers say one page.
Refuses like GitLab: 401 `401 Unauthorized` (the `PRIVATE-TOKEN` header or a bearer token), 404
`404 Project Not Found` / `404 Not found`, 400 `title is missing`, 400 for a bad `state_event`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.doubles._rest import Call, HttpError, Response, RestServer, utc_iso

__all__ = ["GitLabServer", "StoredIssue"]

PROJECT = r"/api/v4/projects/(?P<project>[^/]+)"
ISSUE = PROJECT + r"/issues/(?P<iid>\d+)"
AUTHOR = {"id": 1, "username": "vigil-bot", "name": "Vigil", "state": "active"}


@dataclass
class StoredIssue:
    id: int
    iid: int
    title: str
    description: str | None
    labels: list[str]
    state: str = "opened"
    created_at: str = field(default_factory=utc_iso)
    updated_at: str = field(default_factory=utc_iso)
    closed_at: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _one_page(body: Any) -> Response:
    count = str(len(body))
    headers = {
        "x-page": "1",
        "x-per-page": "20",
        "x-total": count,
        "x-total-pages": "1",
        "x-next-page": "",
        "x-prev-page": "",
    }
    return Response(body=body, headers=headers)


class GitLabServer(RestServer):
    def __init__(
        self, *, token: str | None = None, projects: list[str] | tuple[str, ...] = (), port: int = 0
    ) -> None:
        super().__init__(port=port)
        self.token = token
        self.projects: dict[str, int] = {}
        self.project_issues: dict[int, dict[int, StoredIssue]] = {}
        self._next_issue_id = 500
        self._next_note_id = 9000
        for path in projects:
            self.add_project(path)
        self.route("GET", r"/api/v4/user", lambda call: AUTHOR)
        self.route("GET", r"/api/v4/version", lambda call: {"version": "17.5.0", "revision": "double"})
        self.route("GET", PROJECT, self._get_project)
        self.route("GET", PROJECT + r"/issues", self._list_issues)
        self.route("POST", PROJECT + r"/issues", self._create_issue)
        self.route("GET", ISSUE, self._get_issue)
        self.route("PUT", ISSUE, self._edit_issue)
        self.route("GET", ISSUE + r"/notes", self._list_notes)
        self.route("POST", ISSUE + r"/notes", self._create_note)

    def add_project(self, path: str) -> int:
        with self._cond:
            project_id = self.projects.setdefault(path, len(self.projects) + 1)
            self.project_issues.setdefault(project_id, {})
            return project_id

    def issue(self, project: str, iid: int) -> StoredIssue:
        with self._cond:
            return self.project_issues[self.projects[project]][iid]

    def issues(self, project: str) -> list[StoredIssue]:
        with self._cond:
            return list(self.project_issues[self.projects[project]].values())

    def notes(self, project: str, iid: int) -> list[str]:
        with self._cond:
            return [n["body"] for n in self.issue(project, iid).notes]

    # --- the API -----------------------------------------------------------------------------

    def failure_body(self, status: int) -> bytes:
        return orjson.dumps({"message": f"{status} scripted failure"})

    def not_found(self, method: str, path: str) -> HttpError:
        return HttpError(404, {"error": "404 Not Found"})

    def check_auth(self, call: Call) -> None:
        if self.token is None:
            return
        bearer = call.headers.get("authorization", "").removeprefix("Bearer ")
        if self.token not in (call.headers.get("private-token"), bearer):
            raise HttpError(401, {"message": "401 Unauthorized"})

    def _project(self, call: Call) -> tuple[int, str]:
        ref = call.params["project"]
        for path, project_id in self.projects.items():
            if ref in (path, str(project_id)):
                return project_id, path
        raise HttpError(404, {"message": "404 Project Not Found"})

    def _issue(self, call: Call) -> tuple[str, StoredIssue]:
        project_id, path = self._project(call)
        issue = self.project_issues[project_id].get(int(call.params["iid"]))
        if issue is None:
            raise HttpError(404, {"message": "404 Not found"})
        return path, issue

    def _issue_view(self, path: str, issue: StoredIssue) -> dict[str, Any]:
        return {
            "id": issue.id,
            "iid": issue.iid,
            "project_id": self.projects[path],
            "title": issue.title,
            "description": issue.description,
            "state": issue.state,
            "labels": list(issue.labels),
            "author": AUTHOR,
            "assignees": [],
            "user_notes_count": len(issue.notes),
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "web_url": f"{self.base_url}/{path}/-/issues/{issue.iid}",
            "references": {"short": f"#{issue.iid}", "full": f"{path}#{issue.iid}"},
        }

    def _get_project(self, call: Call) -> Any:
        project_id, path = self._project(call)
        namespace, _, name = path.rpartition("/")
        return {
            "id": project_id,
            "name": name,
            "path": name,
            "path_with_namespace": path,
            "namespace": {"full_path": namespace},
            "web_url": f"{self.base_url}/{path}",
            "issues_enabled": True,
            "default_branch": "main",
        }

    def _list_issues(self, call: Call) -> Response:
        project_id, path = self._project(call)
        state = call.arg("state", "all")
        wanted = _labels(call.arg("labels"))
        found = [
            self._issue_view(path, i)
            for i in sorted(self.project_issues[project_id].values(), key=lambda i: -i.iid)
            if state in ("all", i.state) and all(label in i.labels for label in wanted)
        ]
        return _one_page(found)

    def _create_issue(self, call: Call) -> Response:
        project_id, path = self._project(call)
        body = call.json() or {}
        if not body.get("title"):
            raise HttpError(400, {"error": "title is missing"})
        issues = self.project_issues[project_id]
        self._next_issue_id += 1
        iid = max(issues, default=0) + 1
        issues[iid] = StoredIssue(
            self._next_issue_id, iid, body["title"], body.get("description"), _labels(body.get("labels"))
        )
        return Response(201, self._issue_view(path, issues[iid]))

    def _get_issue(self, call: Call) -> Any:
        path, issue = self._issue(call)
        return self._issue_view(path, issue)

    def _edit_issue(self, call: Call) -> Any:
        path, issue = self._issue(call)
        body = call.json() or {}
        event = body.get("state_event")
        if event is not None:
            if event not in ("close", "reopen"):
                raise HttpError(400, {"error": "state_event does not have a valid value"})
            issue.state = "closed" if event == "close" else "opened"
            issue.closed_at = utc_iso() if event == "close" else None
        if "title" in body:
            issue.title = body["title"]
        if "description" in body:
            issue.description = body["description"]
        if "labels" in body:
            issue.labels = _labels(body["labels"])
        issue.labels += [label for label in _labels(body.get("add_labels")) if label not in issue.labels]
        issue.labels = [label for label in issue.labels if label not in _labels(body.get("remove_labels"))]
        issue.updated_at = utc_iso()
        return self._issue_view(path, issue)

    def _list_notes(self, call: Call) -> Response:
        _, issue = self._issue(call)
        return _one_page(list(issue.notes))

    def _create_note(self, call: Call) -> Response:
        _, issue = self._issue(call)
        body = call.json() or {}
        if not body.get("body"):
            raise HttpError(400, {"error": "body is missing"})
        self._next_note_id += 1
        now = utc_iso()
        note = {
            "id": self._next_note_id,
            "body": body["body"],
            "author": AUTHOR,
            "created_at": now,
            "updated_at": now,
            "system": False,
            "noteable_id": issue.id,
            "noteable_iid": issue.iid,
            "noteable_type": "Issue",
        }
        issue.notes.append(note)
        issue.updated_at = now
        return Response(201, note)
