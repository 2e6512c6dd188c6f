"""`vigil approvals` and `vigil workflows` against a real runtime: a supervised notify-only runbook
waits for approval, is approved (once) with the CLI, and is followed to its end."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.cli.test_admin import cli, cli_json
from tests.conftest import ADMIN_TOKEN, VigilHandle
from tests.doubles.alerts import alertmanager_alert, alertmanager_notification
from vigil.cli.client import server_events
from vigil.cli.workflows import step_summary

NOTIFY = """\
id: tell-oncall
title: Tell the on-call
match:
  alert_labels: {alertname: QueueBacklog}
tier: supervised
steps:
  - action: notify
    params: {message: hi}
verify: {after_s: 0, timeout_s: 1, alert_resolved: false}
"""


async def fire(vigil: VigilHandle, project_id: str, key: str, instance: str) -> str:
    labels = {"alertname": "QueueBacklog", "service": "queue", "instance": instance, "tier": "supervised"}
    answer = await vigil.receiver.post(
        f"{vigil.api_url}/api/v1/projects/{project_id}/alerts/alertmanager",
        json=alertmanager_notification(alertmanager_alert(labels)),
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["incidents"][0]["id"])


async def pending_approval(vigil: VigilHandle, incident_id: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        for approval in await cli_json(vigil, "approvals", "list"):
            if approval["incident_id"] == incident_id:
                return dict(approval)
        assert asyncio.get_running_loop().time() < deadline, "no approval was requested"
        await asyncio.sleep(0.2)


async def setup(vigil: VigilHandle, tmp_path: Path) -> tuple[str, str]:
    project_id, key = await vigil.project_with_key("shop")
    policy = tmp_path / "policy.yaml"
    policy.write_text("approval_expiry_s: 600\n")
    runbook = tmp_path / "tell-oncall.yaml"
    runbook.write_text(NOTIFY)
    for args in (("policy", "set", "shop", str(policy)), ("runbooks", "apply", "shop", str(runbook))):
        result = await cli(vigil, *args)
        assert result.exit_code == 0, result.output
    return project_id, key


async def test_approve_once_then_the_workflow_finishes(vigil: VigilHandle, tmp_path: Path) -> None:
    project_id, key = await setup(vigil, tmp_path)
    assert (await cli(vigil, "approvals", "list")).stdout.strip() == "No pending approvals."
    incident_id = await fire(vigil, project_id, key, "q1")
    approval = await pending_approval(vigil, incident_id)
    workflow_id = approval["workflow_id"]
    assert approval["runbook_id"] == "tell-oncall" and approval["plan"]["steps"] == ["notify (info): hi"]

    waiting = await cli(vigil, "approvals", "list")
    assert waiting.exit_code == 0, waiting.output
    assert (
        approval["id"] in waiting.stdout
        and "shop" in waiting.stdout
        and "notify (info): hi" in waiting.stdout
    )
    assert "(in 9m " in waiting.stdout or "(in 10m " in waiting.stdout  # 600 s from now
    in_project = await cli_json(vigil, "approvals", "list", "shop", "--status", "pending")
    assert [a["id"] for a in in_project] == [approval["id"]]
    assert await cli_json(vigil, "approvals", "list", "shop", "--status", "approved") == []

    listed = await cli(vigil, "workflows", "list", "shop", "--status", "waiting_approval")
    assert listed.exit_code == 0 and workflow_id in listed.stdout and "tell-oncall" in listed.stdout
    [row] = await cli_json(vigil, "workflows", "list", "shop", "--incident", incident_id)
    assert row["id"] == workflow_id and row["status"] == "waiting_approval"

    approved = await cli(
        vigil, "approvals", "approve", "shop", approval["id"], "--by", "ana", "--reason", "go"
    )
    assert approved.exit_code == 0, approved.output
    assert "approved" in approved.stdout and f"vigil workflows watch shop {workflow_id}" in approved.stdout
    again = await cli(vigil, "approvals", "approve", "shop", approval["id"], "--by", "bob")
    assert again.exit_code == 1
    assert "was already answered: approved by ana (conflict, HTTP 409)" in again.stderr
    late_reject = await cli(vigil, "approvals", "reject", "shop", approval["id"], "--by", "bob")
    assert late_reject.exit_code == 1 and "HTTP 409" in late_reject.stderr

    watched = await cli(vigil, "workflows", "watch", "shop", workflow_id)  # returns once it finishes
    assert watched.exit_code == 0, watched.output
    lines = watched.stdout.splitlines()
    assert [line.split()[0] for line in lines][:5] == ["begin", "context", "analyse", "plan", "approval"]
    assert any(line.startswith("approval") and "approved" in line and "by ana: go" in line for line in lines)
    assert any(line.startswith("execute") and "notify (info): hi" in line for line in lines)
    assert lines[-1].startswith("finish") and "resolved" in lines[-1] and "nothing to check" in lines[-1]

    shown = await cli(vigil, "workflows", "show", "shop", workflow_id)
    assert shown.exit_code == 0, shown.output
    assert "status resolved" in shown.stdout and "plan: notify (info): hi" in shown.stdout
    assert "runbook 'tell-oncall' matches 1 of what is known" in shown.stdout.lower()
    body = await cli_json(vigil, "workflows", "show", "shop", workflow_id)
    steps = [(s["step"], s["status"]) for s in body["steps"]]
    assert ("approval", "approved") in steps and ("execute", "done") in steps
    assert steps[-2:] == [("verify", "cleared"), ("finish", "resolved")]
    events = [line.split()[0] for line in watched.stdout.splitlines() if line.split()[0] != "approval"]
    assert events == [step for step, _ in steps if step != "approval"]

    decisions = await cli_json(vigil, "audit", "shop", "--kind", "approval")
    assert [(d["actor"], d["detail"]["decision"]) for d in decisions] == [("ana", "approved")]
    assert await cli_json(vigil, "approvals", "list") == []
    done = await cli_json(vigil, "approvals", "list", "--status", "all")
    assert [(a["status"], a["decided_by"]) for a in done] == [("approved", "ana")]


async def test_watch_stops_cleanly_on_ctrl_c_and_reject_escalates(vigil: VigilHandle, tmp_path: Path) -> None:
    project_id, key = await setup(vigil, tmp_path)
    approval = await pending_approval(vigil, await fire(vigil, project_id, key, "q2"))
    watch = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "vigil.cli.main", "workflows", "watch", "shop", approval["workflow_id"]),
        env={
            **os.environ,
            "VIGIL_API_URL": vigil.api_url,
            "VIGIL_ADMIN_TOKEN": ADMIN_TOKEN,
            "COLUMNS": "250",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert watch.stdout and watch.stderr
    seen = []
    async with asyncio.timeout(30):
        while not seen or not seen[-1].startswith("approval"):  # it waits there for an answer
            seen.append((await watch.stdout.readline()).decode())
            assert seen[-1], (await watch.stderr.read()).decode()  # it ended early
    watch.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        assert await watch.wait() == 130
    stderr = (await watch.stderr.read()).decode()
    assert "stopped watching; the workflow goes on" in stderr and "Traceback" not in stderr

    rejected = await cli(
        vigil, "approvals", "reject", "shop", approval["id"], "--by", "ana", "--reason", "not now"
    )
    assert rejected.exit_code == 0 and "rejected" in rejected.stdout, rejected.output
    watched = await cli(vigil, "workflows", "watch", "shop", approval["workflow_id"], "--json")
    assert watched.exit_code == 0, watched.output
    *_, last = watched.stdout.splitlines()
    assert '"step": "finish"' in last and '"status": "escalated"' in last and "approval rejected" in last

    unknown = await cli(vigil, "workflows", "watch", "shop", "no-such-workflow")
    assert unknown.exit_code == 1 and "HTTP 404" in unknown.stderr


def test_server_events_are_parsed_as_the_format_says() -> None:
    lines = [": ping", "id: 7", "event: step", 'data: {"a":', "data: 1}", "", "data:x", "", "id: 8", ""]
    events = list(server_events(lines))
    assert [(e.id, e.event, e.data) for e in events] == [("7", "step", '{"a":\n1}'), ("7", "message", "x")]


def test_a_step_summary_says_what_its_record_holds() -> None:
    assert step_summary({"what": "comment", "error": "HTTP 401"}) == "comment: HTTP 401"
    assert (
        step_summary({"checks": {"alert resolved": False, "promql": True}})
        == "alert resolved: no, promql: yes"
    )
    unknown = {"step": "escalate", "status": "done", "at": 1.0, "index": 0, "sinks": 2, "note": None}
    assert step_summary(unknown) == "sinks=2"  # a step this CLI does not know yet
