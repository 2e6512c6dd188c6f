"""The remediation workflow of one incident, as a DBOS workflow of steps:

    begin (ticket) -> gather context -> analyse (match a runbook) -> plan (dry runs) -> approval gate -> execute
          -> verify -> resolve, or roll back and escalate

`human_only` incidents are only recorded. A model never writes a command: the analysis chooses
among the runbooks people configured, and their steps are the only actions taken. Every step
records an event (the live streams) and an audit entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from vigil.actions.base import ActionError, ActionRefused, ActionResult, ActionStep, inverse
from vigil.actions.context import ActionContext
from vigil.actions.registry import execute
from vigil.workflow import approval, investigation, steps, verification
from vigil.workflow.engine import APPROVAL_TOPIC, running_here, services
from vigil.workflow.runbooks import TIER_RANK

log = logging.getLogger(__name__)

APPROVAL_POLL_S = 300.0
"""Longest a waiting workflow goes without reading its approval itself: every answer also wakes
it at once, so this only bounds the delay should a wake-up be lost."""


@DBOS.workflow()
async def remediate(project_id: str, incident_id: str, workflow_id: str, act_in_prepare: bool = False) -> str:
    """`act_in_prepare`: the plan's first action, when it follows at once, is taken in the step
    that prepares it (one DBOS step and checkpoint fewer before it). Workflows started before it
    existed are recovered without it, so their recorded steps replay as they were."""
    done = running_here()
    here = asyncio.get_running_loop() is services().loop  # not a recovered one, on DBOS's loop
    first_actions = services().first_actions
    if here:
        first_actions.begin(workflow_id)
    try:
        return await _remediate(project_id, incident_id, workflow_id, act_in_prepare)
    finally:
        if here:
            first_actions.done(workflow_id)
        done()


async def _remediate(project_id: str, incident_id: str, workflow_id: str, act_in_prepare: bool) -> str:
    if act_in_prepare:
        prepared = await prepare_and_act(project_id, incident_id, workflow_id)
    else:
        prepared = await prepare(project_id, incident_id, workflow_id)
    if prepared["tier"] == "human_only":
        return await finish(workflow_id, "recorded", "human_only: recorded and ticketed, never acted on")
    runbook = prepared.get("runbook")
    if runbook is None:
        return await finish(workflow_id, "escalated", prepared["summary"])
    if prepared.get("refused"):
        return await finish(workflow_id, "escalated", f"the runbook cannot run: {prepared['refused']}")
    tier = max(prepared["tier"], runbook["tier"], key=lambda t: TIER_RANK[t])
    below = prepared["confidence"] < prepared["escalate_threshold"]
    if tier == "human_only":
        return await finish(workflow_id, "escalated", f"runbook {runbook['id']} needs a person to act")
    if tier == "supervised" or below:
        why = "supervised runbook" if tier == "supervised" else "analysis below the escalate threshold"
        await services().call(_settled(workflow_id))  # a person decides: not soon
        approval = await request_approval(workflow_id, why)
        decision = await wait_for_decision(workflow_id, approval["id"], approval["expires_at"])
        if decision != "approved":
            return await finish(workflow_id, "escalated", f"approval {decision}")
    results: list[dict[str, Any]] = []
    for index in range(len(runbook["steps"])):
        try:
            result = (
                prepared["first"] if index == 0 and "first" in prepared else await act(workflow_id, index)
            )
        except Exception as exc:  # its retries ran out: recorded by DBOS, so replayed alike
            result = {"status": "failed", "description": f"{type(exc).__name__}: {exc}", "before": {}}
        results.append(result)
        if result["status"] == "failed" and runbook["steps"][index]["required"]:
            await roll_back(workflow_id, results)
            return await finish(workflow_id, "escalated", f"step {index + 1} failed: {result['description']}")
    if all(r["status"] == "dry_run" for r in results):
        return await finish(workflow_id, "dry_run", "every step was a dry run: nothing to verify")
    verify = runbook["verify"]
    await DBOS.sleep_async(verify["after_s"])
    deadline = time.time() + verify["timeout_s"]
    while True:
        check = await verify_cleared(workflow_id)
        if check["cleared"]:
            return await finish(workflow_id, "resolved", check["summary"])
        if time.time() >= deadline:
            break
        await DBOS.sleep_async(min(15.0, max(1.0, verify["timeout_s"] / 10)))
    await roll_back(workflow_id, results)
    return await finish(workflow_id, "rolled_back", f"verification failed: {check['summary']}")


@DBOS.workflow()
async def investigate(workflow_id: str) -> str:
    """Pasted logs' investigation: analysis and a recommended runbook, never an action."""
    return await analyse_pasted(workflow_id)


@DBOS.step()
async def analyse_pasted(workflow_id: str) -> str:
    s = services()
    return await s.call(investigation.run(s.store, s.bus, workflow_id))


async def wait_for_decision(workflow_id: str, approval_id: str, expires_at: float) -> str:
    """A durable wait: the stored answer is read first and after every wake-up or poll, so an
    answer given at any moment is found; past the expiry, the approval expires."""
    while True:
        decision = await read_decision(workflow_id, approval_id)
        if decision != "pending":
            return decision
        remaining = expires_at - time.time()
        if remaining <= 0:
            return await expire(workflow_id, approval_id)
        await DBOS.recv_async(APPROVAL_TOPIC, timeout_seconds=min(remaining, APPROVAL_POLL_S))


@DBOS.step()
async def prepare(project_id: str, incident_id: str, workflow_id: str) -> dict[str, Any]:
    return await services().call(steps.prepare(services(), project_id, incident_id, workflow_id))


@DBOS.step()
async def prepare_and_act(project_id: str, incident_id: str, workflow_id: str) -> dict[str, Any]:
    """`prepare`, then, when the plan goes straight to its first action, that action (as the
    `act` step would take it, with the same idempotency key), its result as `first`. An attempt
    that fails and may be retried is left to the `act` step and its retries."""
    return await services().call(_prepare_and_act(project_id, incident_id, workflow_id))


async def _prepare_and_act(project_id: str, incident_id: str, workflow_id: str) -> dict[str, Any]:
    prepared = await steps.prepare(services(), project_id, incident_id, workflow_id)
    if steps.acts_at_once(prepared):
        try:
            prepared["first"] = await _act(workflow_id, 0)
        except Exception as exc:  # the act step tries again, with its retries, and records the end
            log.info("first action left to its step", extra={"workflow": workflow_id, "error": str(exc)})
    return prepared


@DBOS.step()
async def request_approval(workflow_id: str, why: str) -> dict[str, Any]:
    return await services().call(approval.request_approval(services(), workflow_id, why))


@DBOS.step()
async def read_decision(workflow_id: str, approval_id: str) -> str:
    return await services().call(approval.read_decision(services(), workflow_id, approval_id))


@DBOS.step()
async def expire(workflow_id: str, approval_id: str) -> str:
    return await services().call(approval.expire(services(), workflow_id, approval_id))


@DBOS.step(retries_allowed=True, max_attempts=5, interval_seconds=1.0, backoff_rate=2.0)
async def act(workflow_id: str, index: int) -> dict[str, Any]:
    return await services().call(_act(workflow_id, index))


@DBOS.step()
async def verify_cleared(workflow_id: str) -> dict[str, Any]:
    return await services().call(verification.verify_cleared(services(), workflow_id))


@DBOS.step()
async def undo(workflow_id: str, index: int, result: dict[str, Any]) -> dict[str, Any]:
    return await services().call(_undo(workflow_id, index, result))


@DBOS.step()
async def finish(workflow_id: str, status: str, summary: str) -> str:
    return await services().call(steps.finish(services(), workflow_id, status, summary))


async def roll_back(workflow_id: str, results: list[dict[str, Any]]) -> None:
    for index in reversed(range(len(results))):
        if results[index].get("status") == "done":
            await undo(workflow_id, index, results[index])


async def _settled(workflow_id: str) -> None:
    services().first_actions.done(workflow_id)


async def _context(workflow_id: str) -> tuple[steps.Loaded, ActionContext]:
    loaded = await steps.load_planned(services(), workflow_id)
    return loaded, steps.action_context(services(), loaded)


async def _act(workflow_id: str, index: int) -> dict[str, Any]:
    loaded, context = await _context(workflow_id)
    step = loaded.runbook().spec.steps[index]
    key = f"{workflow_id}:step-{index}"
    started = datetime.now(UTC)
    try:
        result = await execute(step.action_step(), context, key)
    except ActionRefused as exc:
        result = ActionResult(
            action=step.action, status="failed", target="", description=str(exc), idempotency_key=key
        )
    if index == 0:
        first_actions = services().first_actions
        first_actions.done(workflow_id)
        await first_actions.quiet()  # others' first actions before this one's record
    if result.status == "failed" and result.retryable:
        await steps.record_action(services(), loaded, index, result, started, final=False)
        raise ActionError(result.description, retryable=True)  # DBOS retries the step
    return await steps.record_action(services(), loaded, index, result, started, final=True)


async def _undo(workflow_id: str, index: int, raw: dict[str, Any]) -> dict[str, Any]:
    loaded, context = await _context(workflow_id)
    runbook_step = loaded.runbook().spec.steps[index]
    result = ActionResult.model_validate(raw)
    if runbook_step.inverse == "none":
        back: ActionStep | None = None
    elif runbook_step.inverse == "auto":
        back = inverse(runbook_step.action_step(), result)
    else:
        back = runbook_step.inverse.action_step()
    if back is None:
        return await steps.record_undo(services(), loaded, index, None)
    undone = await execute(back, context, f"{workflow_id}:undo-{index}")
    return await steps.record_undo(services(), loaded, index, undone)
