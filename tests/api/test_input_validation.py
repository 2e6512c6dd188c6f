"""Names and settings the API takes have bounds, and unknown fields are refused: a 422 in the
API's error shape, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import VigilHandle
from vigil.store.models import Pipeline, Sink
from vigil.store.repo import new_id, utcnow

AGENT = {"endpoint": "builtin:error-summary"}


def assert_422(response: Any, loc: list[Any], words: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == "validation_error"
    first = body["details"]["errors"][0]
    assert first["loc"][: len(loc)] == loc, body
    assert words in first["msg"], body
    assert body["message"].startswith(".".join(str(p) for p in loc[1:])), body


async def test_key_names_are_bounded_and_unknown_fields_refused(vigil: VigilHandle) -> None:
    project_id, _ = await vigil.project_with_key()
    keys = f"/api/v1/projects/{project_id}/api-keys"
    assert_422(await vigil.api.post(keys, json={"name": "k" * 201}), ["body", "name"], "at most 200")
    assert_422(await vigil.api.post(keys, json={"name": ""}), ["body", "name"], "at least 1")
    assert_422(
        await vigil.api.post(keys, json={"name": "ci", "scopes": ["admin"]}),
        ["body", "scopes"],
        "Extra inputs are not permitted",
    )
    assert (await vigil.api.post(keys, json={"name": "k" * 200})).status_code == 201
    assert [k["name"] for k in (await vigil.api.get(keys)).json()] == ["ci", "k" * 200]


async def test_project_names_are_bounded_and_unknown_fields_refused(vigil: VigilHandle) -> None:
    projects = "/api/v1/projects"
    assert_422(await vigil.api.post(projects, json={"name": "p" * 201}), ["body", "name"], "at most 200")
    assert_422(
        await vigil.api.post(projects, json={"name": "p", "owner": "me"}),
        ["body", "owner"],
        "Extra inputs are not permitted",
    )
    assert (await vigil.api.get(projects)).json() == []


@pytest.mark.parametrize(
    ("spec", "loc", "words"),
    [
        ({"agent": AGENT, "filters": {}}, ["body", "filters"], "Extra inputs"),
        ({"agent": {**AGENT, "retries": 3}}, ["body", "agent", "retries"], "Extra inputs"),
        (
            {"agent": {"endpoint": "http://a.example/" + "p" * 2048}},
            ["body", "agent", "endpoint"],
            "at most 2048",
        ),
        (
            {"agent": {"endpoint": "http://a.example/", "headers": {"Bad Header": "x"}}},
            ["body", "agent", "headers", "Bad Header", "[key]"],
            "should match pattern",
        ),
        (
            {"agent": {"endpoint": "http://a.example/", "headers": {"Content-Length": "1"}}},
            ["body", "agent", "headers"],
            "set by Vigil",
        ),
        (
            {"agent": {"endpoint": "http://a.example/", "headers": {"X-A": "a\r\nX-Injected: 1"}}},
            ["body", "agent", "headers"],
            "line break",
        ),
        (
            {"agent": AGENT, "filter": {"services": ["s" * 257]}},
            ["body", "filter", "services", 0],
            "at most 256",
        ),
        (
            {"agent": AGENT, "filter": {"body": "b" * 1001}},
            ["body", "filter", "body", "contains"],
            "at most 1000",
        ),
        (
            {"agent": AGENT, "redact": {"custom": [{"name": "n", "pattern": "x" * 1001}]}},
            ["body", "redact", "custom", 0, "pattern"],
            "at most 1000",
        ),
    ],
)
async def test_pipeline_specs_are_bounded(
    vigil: VigilHandle, spec: dict[str, Any], loc: list[Any], words: str
) -> None:
    project_id, _ = await vigil.project_with_key()
    response = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/p", json=spec)
    assert_422(response, loc, words)


@pytest.mark.parametrize(
    ("sink", "loc", "words"),
    [
        (
            {"type": "webhook", "url": "https://h.example/", "verify": False},
            ["body", "webhook", "verify"],
            "Extra",
        ),
        (
            {"type": "webhook", "url": "https://h.example/", "name": "n" * 201},
            ["body", "webhook", "name"],
            "at most 200",
        ),
        (
            {"type": "webhook", "url": "https://h.example/" + "u" * 2048},
            ["body", "webhook", "url"],
            "at most 2048",
        ),
        (
            {"type": "webhook", "url": "https://h.example/", "headers": {"Host": "evil.example"}},
            ["body", "webhook", "headers"],
            "set by Vigil",
        ),
        (
            {"type": "slack", "webhook_url": "https://hooks.slack.com/x", "channel": "#a"},
            ["body", "slack", "channel"],
            "Extra",
        ),
    ],
)
async def test_sink_specs_are_bounded(
    vigil: VigilHandle, sink: dict[str, Any], loc: list[Any], words: str
) -> None:
    project_id, _ = await vigil.project_with_key()
    assert_422(await vigil.api.post(f"/api/v1/projects/{project_id}/sinks", json=sink), loc, words)


async def test_specs_stored_under_older_rules_are_shown_with_their_problem(vigil: VigilHandle) -> None:
    """A pipeline or sink saved before the rules tightened (a lookbehind regex, a Host header)
    does not run, is shown with why, secrets masked, and does not stop the others."""
    project_id, _ = await vigil.project_with_key()
    store = vigil.runtime.store
    assert store is not None
    now = utcnow()
    old_pipeline = {
        "filter": {"body": {"regex": "(?<=user )\\w+"}},
        "agent": {"endpoint": "http://u:pw1234@agent.example.com/p?token=t0k", "headers": {"X-Key": "k3y"}},
    }
    old_sink = {"type": "webhook", "url": "https://hooks.example.com/x", "headers": {"Host": "evil.example"}}
    async with store.session() as session:
        session.add(
            Pipeline(project_id=project_id, name="old", spec=old_pipeline, created_at=now, updated_at=now)
        )
        session.add(
            Sink(id=new_id(), project_id=project_id, type="webhook", name=None, spec=old_sink, created_at=now)
        )
        await session.commit()
    good = await vigil.api.put(f"/api/v1/projects/{project_id}/pipelines/good", json={"agent": AGENT})
    # Saving reloads the configuration before answering: the old specs are skipped, not fatal.
    assert good.status_code == 200, good.text

    pipelines = {
        p["name"]: p for p in (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines")).json()
    }
    assert pipelines["good"]["problem"] is None
    old = pipelines["old"]
    assert old["problem"].startswith("stored under older rules") and "filter.body" in old["problem"]
    assert old["spec"]["agent"] == {
        "endpoint": "http://***:***@agent.example.com/p?token=***",
        "headers": {"X-Key": "**********"},
    }
    assert (await vigil.api.get(f"/api/v1/projects/{project_id}/pipelines/old")).json() == old
    [sink] = (await vigil.api.get(f"/api/v1/projects/{project_id}/sinks")).json()
    assert "headers" in sink["problem"]
