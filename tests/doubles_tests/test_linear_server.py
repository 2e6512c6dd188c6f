"""The Linear double through GraphQL over httpx: find the team's states and labels, then a ticket's life."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.doubles.linear_server import LinearServer

API_KEY = "lin_api_test"

TEAM_QUERY = """
query Team($key: String!) {
  teams(filter: {key: {eq: $key}}) {
    nodes { id key states { nodes { id name type } } labels { nodes { id name } } }
  }
}
"""
CREATE = """
mutation IssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url state { name } labels { nodes { name } } } }
}
"""
COMMENT = """
mutation($input: CommentCreateInput!) { commentCreate(input: $input) { success comment { id body } } }
"""
UPDATE = """
mutation($id: String!, $input: IssueUpdateInput!) {
  issueUpdate(id: $id, input: $input) { success issue { identifier state { name type } labels { nodes { name } } } }
}
"""


@pytest.fixture
def linear() -> Iterator[LinearServer]:
    with LinearServer(api_key=API_KEY, teams={"OPS": "Operations"}) as server:
        server.add_label("incident")
        server.add_label("escalated", team="OPS")
        yield server


def gql(linear: LinearServer, query: str, api_key: str = API_KEY, **variables: Any) -> httpx.Response:
    with httpx.Client(base_url=linear.base_url, headers={"Authorization": api_key}) as http:
        return http.post("/graphql", json={"query": query, "variables": variables})


def data(response: httpx.Response) -> Any:
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    return body["data"]


def test_the_life_of_a_ticket(linear: LinearServer) -> None:
    [team] = data(gql(linear, TEAM_QUERY, key="OPS"))["teams"]["nodes"]
    states = {s["name"]: s["id"] for s in team["states"]["nodes"]}
    labels = {label["name"]: label["id"] for label in team["labels"]["nodes"]}
    assert set(states) == {"Backlog", "Todo", "In Progress", "Done", "Canceled"}
    assert set(labels) == {"incident", "escalated"}

    created = data(
        gql(
            linear,
            CREATE,
            input={
                "teamId": team["id"],
                "title": "Checkout errors",
                "description": "5xx 12%",
                "labelIds": [labels["incident"]],
            },
        )
    )["issueCreate"]
    assert created["success"] is True
    issue = created["issue"]
    assert (issue["identifier"], issue["state"]["name"]) == ("OPS-1", "Todo")
    assert set(issue) == {"id", "identifier", "url", "state", "labels"}
    for body in ("Step 1, rollout restart: done", "Step 2, verify: the alert resolved"):
        assert data(gql(linear, COMMENT, input={"issueId": issue["id"], "body": body}))["commentCreate"][
            "success"
        ]
    escalated = data(gql(linear, UPDATE, id=issue["id"], input={"addedLabelIds": [labels["escalated"]]}))
    assert [n["name"] for n in escalated["issueUpdate"]["issue"]["labels"]["nodes"]] == [
        "incident",
        "escalated",
    ]
    done = data(gql(linear, UPDATE, id="OPS-1", input={"stateId": states["Done"]}))["issueUpdate"]["issue"]
    assert done["state"] == {"name": "Done", "type": "completed"}

    stored = linear.issue("OPS-1")
    assert (stored.title, stored.description, stored.state, stored.labels) == (
        "Checkout errors",
        "5xx 12%",
        "Done",
        ["incident", "escalated"],
    )
    assert linear.comments("OPS-1") == ["Step 1, rollout restart: done", "Step 2, verify: the alert resolved"]
    found = data(
        gql(
            linear, '{ issues(filter: {labels: {some: {name: {eq: "escalated"}}}}) { nodes { identifier } } }'
        )
    )
    assert found == {"issues": {"nodes": [{"identifier": "OPS-1"}]}}
    assert linear.operations == [
        "teams",
        "issueCreate",
        "commentCreate",
        "commentCreate",
        "issueUpdate",
        "issueUpdate",
        "issues",
    ]


def test_errors_as_graphql_gives_them(linear: LinearServer) -> None:
    unknown_field = gql(linear, "{ viewer { id shoeSize } }")
    assert unknown_field.status_code == 400
    assert unknown_field.json()["errors"][0]["message"] == 'Cannot query field "shoeSize" on type "User".'
    missing = gql(
        linear, 'mutation($id: String!) { issueUpdate(id: $id, input: {title: "x"}) { success } }', id="nope"
    )
    assert missing.status_code == 200
    assert missing.json()["data"] is None
    assert missing.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert gql(linear, "{ viewer { id ").status_code == 400
    refused = gql(linear, "{ viewer { id } }", api_key="wrong")
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "AUTHENTICATION_ERROR"
    assert data(gql(linear, "{ viewer { id } }", api_key=f"Bearer {API_KEY}")) == {
        "viewer": {"id": "user-vigil"}
    }
