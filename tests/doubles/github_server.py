"""GitHub's REST API v3 for issues: what a ticketing step does through PyGithub.

    with GitHubServer(token="ghp_test", repos=["acme/shop"]) as gh:          # or: async with ...
        client = github.Github(base_url=gh.api_url, auth=github.Auth.Token("ghp_test"))
        issue = client.get_repo("acme/shop").create_issue("Checkout errors", body="...", labels=["incident"])
        issue.create_comment("Step 1: rollout restart: done"); issue.add_to_labels("escalated")
        issue.edit(state="closed", state_reason="completed")
        gh.issue("acme/shop", 1)        # the stored issue: title, body, state, labels (names)
        gh.comments("acme/shop", 1)     # comment bodies, oldest first

Served under `/api/v3` as GitHub Enterprise is, so PyGithub's absolute URLs (`url` fields) lead back
here. Routes: the repository; issues (create, list with `state`/`labels`, get, edit); comments (create,
list); labels (add, replace, remove one). Labels named on an issue but unknown to the repository are
created, as GitHub does. Refuses like GitHub: 401 `Bad credentials`, 404 `Not Found`, 422
`Validation Failed` with `errors` (missing title, bad state).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.doubles._rest import Call, HttpError, Response, RestServer, utc_iso

__all__ = ["GitHubServer", "StoredIssue"]

DOCS = "https://docs.github.com/rest"
REPO = r"/api/v3/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
ISSUE = REPO + r"/issues/(?P<number>\d+)"
USER = {"login": "vigil-bot", "id": 1, "type": "Bot"}


@dataclass
class StoredIssue:
    number: int
    title: str
    body: str | None
    labels: list[str]
    assignees: list[str]
    state: str = "open"
    state_reason: str | None = None
    created_at: str = field(default_factory=utc_iso)
    updated_at: str = field(default_factory=utc_iso)
    closed_at: str | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)


def _validation(field_name: str, code: str = "missing_field") -> HttpError:
    errors = [{"resource": "Issue", "code": code, "field": field_name}]
    return HttpError(422, {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS})


class GitHubServer(RestServer):
    def __init__(
        self, *, token: str | None = None, repos: list[str] | tuple[str, ...] = (), port: int = 0
    ) -> None:
        super().__init__(port=port)
        self.token = token
        self.repos: dict[str, dict[int, StoredIssue]] = {name: {} for name in repos}
        self.repo_labels: dict[str, list[str]] = {name: [] for name in repos}
        self._comment_ids = iter(range(1000, 10**9))
        self.route("GET", r"/api/v3/user", lambda call: USER)
        self.route("GET", REPO, self._get_repo)
        self.route("GET", REPO + r"/issues", self._list_issues)
        self.route("POST", REPO + r"/issues", self._create_issue)
        self.route("GET", ISSUE, self._get_issue)
        self.route("PATCH", ISSUE, self._edit_issue)
        self.route("GET", ISSUE + r"/comments", self._list_comments)
        self.route("POST", ISSUE + r"/comments", self._create_comment)
        self.route("GET", ISSUE + r"/labels", lambda call: self._labels(call))
        self.route("POST", ISSUE + r"/labels", lambda call: self._labels(call, add=True))
        self.route("PUT", ISSUE + r"/labels", lambda call: self._labels(call, replace=True))
        self.route("DELETE", ISSUE + r"/labels/(?P<label>[^/]+)", self._remove_label)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v3"

    def add_repo(self, full_name: str) -> None:
        with self._cond:
            self.repos.setdefault(full_name, {})
            self.repo_labels.setdefault(full_name, [])

    def issue(self, repo: str, number: int) -> StoredIssue:
        with self._cond:
            return self.repos[repo][number]

    def issues(self, repo: str) -> list[StoredIssue]:
        with self._cond:
            return list(self.repos[repo].values())

    def comments(self, repo: str, number: int) -> list[str]:
        with self._cond:
            return [c["body"] for c in self.repos[repo][number].comments]

    # --- the API -----------------------------------------------------------------------------

    def failure_body(self, status: int) -> bytes:
        return orjson.dumps(
            {"message": f"scripted failure {status}", "documentation_url": DOCS, "status": str(status)}
        )

    def not_found(self, method: str, path: str) -> HttpError:
        return HttpError(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    def check_auth(self, call: Call) -> None:
        if self.token is None:
            return
        scheme, _, presented = call.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or presented != self.token:
            raise HttpError(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})

    def _repo(self, call: Call) -> tuple[str, dict[int, StoredIssue]]:
        name = f"{call.params['owner']}/{call.params['repo']}"
        if name not in self.repos:
            raise self.not_found(call.method, call.path)
        return name, self.repos[name]

    def _issue(self, call: Call) -> tuple[str, StoredIssue]:
        name, issues = self._repo(call)
        number = int(call.params["number"])
        if number not in issues:
            raise self.not_found(call.method, call.path)
        return name, issues[number]

    def _label_view(self, repo: str, label: str) -> dict[str, Any]:
        label_id = int(hashlib.sha256(f"{repo}/{label}".encode()).hexdigest()[:8], 16)
        url = f"{self.api_url}/repos/{repo}/labels/{label}"
        return {
            "id": label_id,
            "name": label,
            "color": "ededed",
            "default": False,
            "url": url,
            "description": None,
        }

    def _issue_view(self, repo: str, issue: StoredIssue) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{repo}/issues/{issue.number}"
        return {
            "id": 100_000 + issue.number,
            "node_id": f"I_{issue.number}",
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "labels": [self._label_view(repo, label) for label in issue.labels],
            "assignees": [{"login": login} for login in issue.assignees],
            "user": USER,
            "comments": len(issue.comments),
            "url": url,
            "repository_url": f"{self.api_url}/repos/{repo}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "html_url": f"{self.base_url}/{repo}/issues/{issue.number}",
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
        }

    def _get_repo(self, call: Call) -> Any:
        name, _ = self._repo(call)
        owner, short = name.split("/")
        return {
            "id": int(hashlib.sha256(name.encode()).hexdigest()[:8], 16),
            "name": short,
            "full_name": name,
            "owner": {"login": owner, "type": "Organization"},
            "private": False,
            "has_issues": True,
            "url": f"{self.api_url}/repos/{name}",
            "html_url": f"{self.base_url}/{name}",
            "default_branch": "main",
        }

    def _use_labels(self, repo: str, names: Any) -> list[str]:
        if not isinstance(names, list):
            raise _validation("labels", "invalid")
        wanted = [n["name"] if isinstance(n, dict) else str(n) for n in names]
        for label in wanted:
            if label not in self.repo_labels[repo]:
                self.repo_labels[repo].append(label)
        return wanted

    def _create_issue(self, call: Call) -> Any:
        name, issues = self._repo(call)
        body = call.json() or {}
        if not isinstance(body.get("title"), str) or not body["title"]:
            raise _validation("title")
        number = max(issues, default=0) + 1
        labels = self._use_labels(name, body.get("labels", []))
        issues[number] = StoredIssue(
            number, body["title"], body.get("body"), labels, list(body.get("assignees", []))
        )
        return Response(201, self._issue_view(name, issues[number]))

    def _list_issues(self, call: Call) -> Any:
        name, issues = self._repo(call)
        state = call.arg("state", "open")
        wanted = [label for label in (call.arg("labels") or "").split(",") if label]
        return [
            self._issue_view(name, issue)
            for issue in sorted(issues.values(), key=lambda i: -i.number)
            if state in ("all", issue.state) and all(label in issue.labels for label in wanted)
        ]

    def _get_issue(self, call: Call) -> Any:
        name, issue = self._issue(call)
        return self._issue_view(name, issue)

    def _edit_issue(self, call: Call) -> Any:
        name, issue = self._issue(call)
        body = call.json() or {}
        if "state" in body:
            if body["state"] not in ("open", "closed"):
                raise _validation("state", "invalid")
            if body["state"] != issue.state:
                issue.closed_at = utc_iso() if body["state"] == "closed" else None
            issue.state = body["state"]
            issue.state_reason = body.get(
                "state_reason", "completed" if issue.state == "closed" else "reopened"
            )
        if "title" in body:
            issue.title = body["title"]
        if "body" in body:
            issue.body = body["body"]
        if "labels" in body:
            issue.labels = self._use_labels(name, body["labels"])
        issue.updated_at = utc_iso()
        return self._issue_view(name, issue)

    def _comment_view(self, repo: str, issue: StoredIssue, comment: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{repo}/issues/comments/{comment['id']}"
        issue_url = f"{self.api_url}/repos/{repo}/issues/{issue.number}"
        html = f"{self.base_url}/{repo}/issues/{issue.number}#issuecomment-{comment['id']}"
        return comment | {"url": url, "issue_url": issue_url, "html_url": html, "user": USER}

    def _list_comments(self, call: Call) -> Any:
        name, issue = self._issue(call)
        return [self._comment_view(name, issue, c) for c in issue.comments]

    def _create_comment(self, call: Call) -> Any:
        name, issue = self._issue(call)
        body = call.json() or {}
        if not isinstance(body.get("body"), str) or not body["body"]:
            raise HttpError(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
                },
            )
        now = utc_iso()
        comment = {"id": next(self._comment_ids), "body": body["body"], "created_at": now, "updated_at": now}
        issue.comments.append(comment)
        issue.updated_at = now
        return Response(201, self._comment_view(name, issue, comment))

    def _labels(self, call: Call, *, add: bool = False, replace: bool = False) -> Any:
        name, issue = self._issue(call)
        if add or replace:
            body = call.json()
            names = body.get("labels", []) if isinstance(body, dict) else body
            given = self._use_labels(name, names)
            issue.labels = (
                given if replace else issue.labels + [label for label in given if label not in issue.labels]
            )
            issue.updated_at = utc_iso()
        return [self._label_view(name, label) for label in issue.labels]

    def _remove_label(self, call: Call) -> Any:
        name, issue = self._issue(call)
        label = call.params["label"]
        if label not in issue.labels:
            raise HttpError(
                404, {"message": "Label does not exist", "documentation_url": DOCS, "status": "404"}
            )
        issue.labels.remove(label)
        return [self._label_view(name, label) for label in issue.labels]
