"""`/mcp` on a real running Vigil, through the SDK's own streamable HTTP client: a project's key
opens it, the key's project is all its tools see, and a proposal waits at the approval gate until a
person answers through the API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import ADMIN_TOKEN, VigilHandle
from tests.detect.test_archive import minute, window_signals
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification, resolved
from tests.logs_factory import PROTOBUF, export_bytes
from vigil.detect.signals import SignalKind
from vigil.pipeline.templates import TemplateMiner

NOTIFY_RUNBOOK = {
    "title": "Tell the on-call, then note it",
    "description": "Nothing else: a person decides what to do.",
    "match": {"alert_labels": {"alertname": "SomethingElse"}},
    "tier": "autonomous",
    "steps": [
        {"action": "notify", "params": {"message": "look at the queue"}, "name": "tell"},
        {"action": "notify", "params": {"message": "noted"}, "name": "note"},
    ],
    "verify": {"after_s": 0, "timeout_s": 1, "alert_resolved": False},
}


@asynccontextmanager
async def mcp_session(vigil: VigilHandle, key: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        streamable_http_client(f"{vigil.api_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result
    [content] = result.content
    assert isinstance(content, types.TextContent)
    return content.text


async def fire(
    vigil: VigilHandle, project_id: str, key: str, alertname: str, tier: str = "autonomous"
) -> str:
    labels = {"alertname": alertname, "service": "queue", "tier": tier}
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
        json=alertmanager_notification(alertmanager_alert(labels, {"summary": "backlog growing"})),
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["incidents"][0]["id"])


async def put_runbook(vigil: VigilHandle, project_id: str, runbook_id: str, spec: dict[str, Any]) -> None:
    answer = await vigil.api.put(f"/api/v1/projects/{project_id}/runbooks/{runbook_id}", json=spec)
    assert answer.status_code in (200, 201), answer.text


async def test_a_missing_or_wrong_key_is_refused_before_anything_is_read(vigil: VigilHandle) -> None:
    await vigil.project_with_key("shop")
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=vigil.api_url, timeout=30) as http:
        for headers in ({}, {"X-API-Key": "vgl_not-a-key"}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
            answer = await http.post("/mcp", json=initialize, headers={**accept, **headers})
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"] == "unauthorized"
            assert answer.headers["www-authenticate"].startswith("Bearer")
        listing = await http.get("/mcp", headers=accept)
        assert listing.status_code == 401
    with pytest.raises(ExceptionGroup) as failed:  # the SDK's client fails to initialize
        async with mcp_session(vigil, "vgl_not-a-key"):
            pass
    assert failed.group_contains(MCPError, match="error response")


async def test_the_keys_project_is_all_the_tools_see(vigil: VigilHandle) -> None:
    shop, shop_key = await vigil.project_with_key("shop")
    other, other_key = await vigil.project_with_key("other")
    ours = await fire(vigil, shop, shop_key, "QueueBacklog")
    theirs = await fire(vigil, other, other_key, "DiskFull")
    miner = TemplateMiner()
    for n in range(5):
        miner.mine(f"connection pool exhausted after {n * 10} ms")
    miner.mine("user 42 logged in")
    await vigil.runtime.store.save_template_states({shop: miner.state().decode()})  # type: ignore[union-attr]
    lines = [f"queue consumer stalled after {n} ms password=hunter2" for n in range(12)]
    sent = await vigil.receiver.post(
        "/v1/logs", content=export_bytes("queue", lines), headers={**PROTOBUF, "X-API-Key": shop_key}
    )
    assert sent.status_code == 200, sent.text
    slow = window_signals(minute(time.time()) - 120, project=shop)[SignalKind.SLOW_ENDPOINT]
    await vigil.runtime.evidence.put(slow)  # type: ignore[union-attr]

    async with mcp_session(vigil, shop_key) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {
            "list_incidents",
            "get_incident",
            "list_workflows",
            "get_workflow",
            "list_runbooks",
            "query_templates",
            "query_records",
            "get_evidence",
            "propose_action",
            "get_action_result",
        } <= tools
        listed = await call(session, "list_incidents")
        assert [i["id"] for i in listed["incidents"]] == [ours]
        incident = await call(session, "get_incident", incident_id=ours)
        assert incident["title"] and incident["status"] == "open" and incident["project"] == shop
        assert "no incident" in await refused(session, "get_incident", incident_id=theirs)
        templates = (await session.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "vigil://incidents/{incident_id}",
            "vigil://workflows/{workflow_id}",
        }
        [content] = (await session.read_resource(f"vigil://incidents/{ours}")).contents
        assert isinstance(content, types.TextResourceContents) and json.loads(content.text)["id"] == ours
        with pytest.raises(MCPError, match="no incident"):
            await session.read_resource(f"vigil://incidents/{theirs}")
        assert "no incident" in await refused(
            session, "propose_action", incident_id=theirs, runbook_id="x", reason="r"
        )

        templates = await call(session, "query_templates", contains="POOL")
        assert templates["matched"] == 1
        [pool] = templates["templates"]
        assert pool["count"] == 5 and pool["template"].startswith("connection pool exhausted after")
        assert (await call(session, "query_templates"))["matched"] == 2
        evidence = await call(session, "get_evidence", fingerprint=slow.fingerprint)
        assert evidence["count"] == 1 and evidence["documents"][0]["signal"]["kind"] == "slow_endpoint"
        assert (await call(session, "get_evidence", fingerprint="no-such-signal"))["count"] == 0
        assert "fingerprint" in await refused(session, "get_evidence", fingerprint="../etc")
        async with asyncio.timeout(30):
            while True:
                records = await call(session, "query_records", severity="error", limit=3)
                if records["matched"] >= 12:
                    break
                await asyncio.sleep(0.1)
        assert records["matched"] == 12 and records["counts"]["by_service"] == {"queue": 12}
        assert len(records["records"]) == 3 and "hunter2" not in str(records)
        one = await call(session, "query_records", grep=r"after 1[01] ms", since_minutes=5)
        assert one["matched"] == 2
        assert "grep" in await refused(session, "query_records", grep="(a)\\1")

    async with mcp_session(vigil, other_key) as session:
        assert [i["id"] for i in (await call(session, "list_incidents"))["incidents"]] == [theirs]
        assert (await call(session, "query_templates"))["matched"] == 0
        assert (await call(session, "query_records"))["matched"] == 0
        assert (await call(session, "get_evidence", fingerprint=slow.fingerprint))["count"] == 0
        workflows = (await call(session, "list_workflows"))["workflows"]
        assert all(w["project_id"] == other for w in workflows)


async def approval_of(vigil: VigilHandle, project_id: str, workflow_id: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            answer = await vigil.api.get(
                f"/api/v1/projects/{project_id}/approvals", params={"status": "pending"}
            )
            found = [a for a in answer.json() if a["workflow_id"] == workflow_id]
            if found:
                return dict(found[0])
            await asyncio.sleep(0.1)


async def test_a_proposal_waits_for_approval_and_its_result_is_read_back(vigil: VigilHandle) -> None:
    shop, key = await vigil.project_with_key("shop")
    await put_runbook(vigil, shop, "tell-oncall", NOTIFY_RUNBOOK)
    _, other_key = await vigil.project_with_key("other")
    incident_id = await fire(vigil, shop, key, "QueueBacklog")

    async with mcp_session(vigil, key) as session:
        runbooks = await call(session, "list_runbooks")
        [listed] = runbooks["runbooks"]
        assert listed["id"] == "tell-oncall" and [s["name"] for s in listed["steps"]] == ["tell", "note"]
        assert "no step '7'" in await refused(
            session, "propose_action", incident_id=incident_id, runbook_id="tell-oncall", step="7", reason="r"
        )
        assert "no runbook 'rm-rf'" in await refused(
            session, "propose_action", incident_id=incident_id, runbook_id="rm-rf", reason="r"
        )
        proposed = await call(
            session,
            "propose_action",
            incident_id=incident_id,
            runbook_id="tell-oncall",
            step="tell",
            reason="the queue backs up; the on-call should know",
            agent="claude",
        )
        workflow_id = proposed["id"]
        assert proposed["created"] is True and proposed["incident_id"] == incident_id
        again = await call(
            session,
            "propose_action",
            incident_id=incident_id,
            runbook_id="tell-oncall",
            step="tell",
            reason="again",
        )
        assert again["id"] == workflow_id and again["created"] is False

        approval = await approval_of(vigil, shop, workflow_id)
        assert approval["runbook_id"] == "tell-oncall"
        assert (
            approval["plan"]["why"] == "proposed by mcp:claude: the queue backs up; the on-call should know"
        )
        assert approval["plan"]["steps"] == ["notify (info): look at the queue"]  # that step only
        waiting = await call(session, "get_action_result", workflow_id=workflow_id)
        assert waiting["status"] == "waiting_approval" and waiting["approval"]["status"] == "pending"
        assert [s["step"] for s in waiting["steps"]] == ["begin", "context", "analyse", "plan", "approval"]
        assert not any(s["step"] == "execute" for s in waiting["steps"])  # nothing ran before approval

        decided = await vigil.api.post(
            f"/api/v1/projects/{shop}/approvals/{approval['id']}/approve", json={"by": "ana", "reason": "go"}
        )
        assert decided.status_code == 200, decided.text
        async with asyncio.timeout(30):
            while True:
                result = await call(session, "get_action_result", workflow_id=workflow_id)
                if result["status"] in ("resolved", "escalated", "rolled_back"):
                    break
                await asyncio.sleep(0.1)
        assert result["status"] == "resolved", result
        executed = [s for s in result["steps"] if s["step"] == "execute"]
        assert [(s["status"], s["description"]) for s in executed] == [
            ("done", "notify (info): look at the queue")
        ]
        assert result["approval"]["status"] == "approved" and result["approval"]["decided_by"] == "ana"
        full = await call(session, "get_workflow", workflow_id=workflow_id)
        assert full["analysis"]["engine"] == "proposal" and full["proposal"]["by"] == "mcp:claude"

    async with mcp_session(vigil, other_key) as session:
        assert "no workflow" in await refused(session, "get_action_result", workflow_id=workflow_id)
    audit = await vigil.api.get(f"/api/v1/projects/{shop}/audit", params={"kind": "workflow.proposed"})
    assert audit.status_code == 200, audit.text
    assert [(entry["actor"], entry["subject"]) for entry in audit.json()] == [("mcp:claude", workflow_id)]


async def test_nothing_is_proposed_for_a_human_only_or_resolved_incident(vigil: VigilHandle) -> None:
    shop, key = await vigil.project_with_key("shop")
    await put_runbook(vigil, shop, "tell-oncall", NOTIFY_RUNBOOK)
    people_only = await fire(vigil, shop, key, "PaymentsDown", tier="human_only")
    labels = {"alertname": "QueueBacklog", "service": "queue", "tier": "autonomous"}
    firing = alertmanager_alert(labels, {"summary": "backlog"})
    for alert in (firing, resolved(firing)):
        answer = await vigil.receiver.post(
            f"{vigil.api_url}/api/v1/projects/{shop}/alerts/alertmanager",
            json=alertmanager_notification(alert),
            headers={"X-API-Key": key},
        )
        assert answer.status_code == 202, answer.text
    gone = answer.json()["incidents"][0]["id"]
    async with mcp_session(vigil, key) as session:
        why = await refused(
            session, "propose_action", incident_id=people_only, runbook_id="tell-oncall", reason="try"
        )
        assert "human_only: a person must act" in why
        why = await refused(
            session, "propose_action", incident_id=gone, runbook_id="tell-oncall", reason="try"
        )
        assert "is resolved: nothing to act on" in why
        assert "reason" in await refused(
            session, "propose_action", incident_id=gone, runbook_id="tell-oncall", reason=""
        )
        queue = await fire(vigil, shop, key, "QueueBacklog")
        policy = await vigil.api.put(f"/api/v1/projects/{shop}/workflow-policy", json={"proposals": False})
        assert policy.status_code == 200, policy.text
        why = await refused(
            session, "propose_action", incident_id=queue, runbook_id="tell-oncall", reason="try"
        )
        assert "takes no proposals" in why
    proposals = await vigil.api.get(f"/api/v1/projects/{shop}/audit", params={"kind": "workflow.proposed"})
    assert proposals.json() == []
