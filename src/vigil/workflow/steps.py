"""What each step of the workflow does, on the main event loop: read and write the database, call
Prometheus, record an event (the live streams) and an audit entry for every step."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from vigil.actions.base import ActionError, ActionResult
from vigil.actions.context import ActionContext
from vigil.actions.registry import plan
from vigil.alerts.models import TIERS
from vigil.bus.topology import workflow_events_subject
from vigil.learning.rules import revise as learned
from vigil.learning.store import NewCase
from vigil.masking import scrub
from vigil.store.models import WorkflowRow
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.analysis import investigate
from vigil.workflow.notices import (
    ACTOR,
    ESCALATED,
    comment_on_ticket,
    emit,
    escalate_to_sinks,
    open_ticket,
    ticket_call,
    ticket_ref,
)
from vigil.workflow.policy import WorkflowPolicy
from vigil.workflow.proposals import proposed_analysis
from vigil.workflow.runbooks import TIER_RANK, Runbook, RunbookSpec

if TYPE_CHECKING:
    from vigil.workflow.engine import Services
    from vigil.workflow.store import Amend

log = logging.getLogger(__name__)

PLANNED_KEPT = 1000
"""Workflows whose planned row is kept in the process (`keep_planned`); the oldest are read again."""


@dataclass
class Loaded:
    row: WorkflowRow
    incident: dict[str, Any]
    policy: WorkflowPolicy
    stored: bool = True
    """False until the first record of a row made by this step."""

    def runbook(self) -> Runbook:
        chosen = self.row.body["runbook"]
        return Runbook(id=chosen["id"], spec=RunbookSpec.model_validate(chosen["spec"]))


async def load(services: Services, workflow_id: str, *, incident: bool = True) -> Loaded:
    """The workflow's row, its policy, and its incident unless the step has no use for it (then
    `incident` is empty)."""
    if incident:
        row, body = await services.workflows.workflow_and_incident(workflow_id)
    else:
        row, body = await services.workflows.find_workflow(workflow_id), {}
    assert row is not None and body is not None, workflow_id
    return Loaded(row, body, await services.workflows.policy(row.project_id))


async def record_step(
    services: Services,
    loaded: Loaded,
    name: str,
    status: str,
    summary: dict[str, Any],
    *,
    body: dict[str, Any] | Amend | None = None,
    columns: dict[str, Any] | None = None,
    more: list[tuple[str, str, dict[str, Any]]] | None = None,
    case: NewCase | None = None,
) -> None:
    """Record steps (this one, after `more`) with any changes to the workflow and the analysis'
    case, in one transaction; wake the live streams; comment on the ticket."""
    entries = [*(more or []), (name, status, summary)]
    new_row = loaded.row
    row, event_id = await services.workflows.record(
        loaded.row.id,
        entries,
        actor=ACTOR,
        columns=columns,
        body=body,
        create=None if loaded.stored else lambda: new_row,
        case=case,
    )
    loaded.row, loaded.stored = row, True
    if not event_id:  # recorded already (`body` said so): nothing new to tell
        return
    if services.bus is not None and services.bus.connected:
        # the streams read the events table; this only wakes them, in whichever process they are
        with contextlib.suppress(Exception):
            await services.bus.nc.publish(workflow_events_subject(row.project_id), str(event_id).encode())
    ref = ticket_ref(loaded)
    if ref is not None:
        lines = [
            f"**{step}**: {state}" + (f" — {_one_line(said)}" if said else "")
            for step, state, said in entries
            if step not in ("begin", "finish")
        ]
        for text in lines:  # a comment per step
            await comment_on_ticket(services, loaded, ref, text)


def _one_line(summary: dict[str, Any]) -> str:
    return scrub("; ".join(f"{k}: {v}" for k, v in summary.items() if v not in (None, "", [], {})))[:1000]


async def prepare(services: Services, project_id: str, incident_id: str, workflow_id: str) -> dict[str, Any]:
    """Begin (the workflow's row, its ticket), gather the context, analyse (match a runbook) and
    plan (the runbook's dry runs): one step, recorded in one transaction, since none of it acts.
    Its outcome is kept with a plan: run again after that (a crash before DBOS's checkpoint), it
    gives the same plan, so that an action taken in the same DBOS step is the same action."""
    policy = await services.workflows.policy(project_id)
    if policy.tickets is not None:
        incident, found = await services.workflows.incident(project_id, incident_id), None
    else:
        incident, found = await services.workflows.incident_and_workflow(project_id, incident_id, workflow_id)
    tier, threshold = _tier_and_threshold(incident, policy)
    body = {
        "incident_id": incident_id,
        "title": incident.get("title", ""),
        "steps": [],
        "source": incident.get("source", "detector"),
    }
    if policy.tickets is not None:  # stored before the ticket is opened, which may take a while
        row = await services.workflows.open_workflow(workflow_id, project_id, incident_id, tier, body)
        stored = True
    else:  # made with the steps' record, in one transaction, unless there already (a proposal)
        row = found or services.workflows.new_workflow(workflow_id, project_id, incident_id, tier, body)
        stored = found is not None
    if row.body.get("prepared"):  # run again after its plan was recorded: that plan stands
        prepared = dict(row.body["prepared"])
        if acts_at_once(prepared):
            keep_planned(services, row)
        return prepared
    proposal = row.body.get("proposal")
    if proposal:  # an outside agent's proposal always waits at the approval gate
        tier = max(tier, "supervised", key=lambda t: TIER_RANK[t])
    loaded = Loaded(row, incident, policy, stored=stored)
    changes: dict[str, Any] = {}
    ticket = row.body.get("ticket") or await open_ticket(services, loaded, workflow_id, tier)
    if ticket:
        changes["ticket"] = loaded.row.body["ticket"] = ticket
    entries: list[tuple[str, str, dict[str, Any]]] = [
        ("begin", "done", {"tier": tier, "incident": incident_id})
    ]
    out: dict[str, Any] = {"tier": tier, "escalate_threshold": threshold, "runbook": None}
    if tier == "human_only":
        await record_step(services, loaded, *entries[0], body=changes)
        return out
    context = gather(incident)
    runbooks = await WorkflowRepo(services.store).runbooks(project_id)
    case = None
    if proposal:  # the runbook an agent named, not re-ranked: the approver judges it
        analysis, chosen = proposed_analysis(incident, proposal, runbooks)
    else:
        investigated = await investigate(
            services.analyst, project_id, workflow_id, incident, runbooks, policy.analysis_engine
        )
        context["investigation"] = investigated.brief
        # past cases re-rank runbooks; a rejected plan is not proposed again
        analysis, chosen, case = await learned(
            services.store,
            project_id,
            workflow_id,
            incident,
            runbooks,
            investigated.match,
            investigated.analysis,
            investigated.chosen,
        )
    described = len(context.get("signals", [])) or len((context.get("alert") or {}).get("labels", {}))
    calls = len((context.get("investigation") or {}).get("calls", []))
    entries.append(("context", "done", {"services": context["services"], "facts": described, "calls": calls}))
    summary = {
        k: analysis[k] for k in ("engine", "summary", "confidence", "known", "error_type") if k in analysis
    } | {"runbook": analysis["runbook_id"]}
    entries.append(("analyse", "done", summary))
    changes |= {"context": context, "analysis": analysis}
    out |= {"summary": analysis["summary"], "confidence": analysis["confidence"]}
    if chosen is None:
        last = entries.pop()
        await record_step(services, loaded, *last, more=entries, body=changes, case=case)
        return out
    changes["runbook"] = {"id": chosen.id, "spec": chosen.spec.model_dump(mode="json")}
    loaded.row.body = {**loaded.row.body, **changes}
    plans, refused = await dry_runs(loaded, services)
    changes["plan"] = plans
    plan_summary = {"steps": [p["description"] for p in plans], "refused": refused}
    out["refused"] = refused
    out["runbook"] = {
        "id": chosen.id,
        "tier": chosen.spec.tier,
        "steps": [{"required": step.required} for step in chosen.spec.steps],
        "verify": chosen.spec.verify.model_dump(mode="json"),
    }
    changes["prepared"] = out
    await record_step(
        services,
        loaded,
        "plan",
        "refused" if refused else "done",
        plan_summary,
        more=entries,
        body=changes,
        columns={"runbook_id": chosen.id, "status": "running"},
        case=case,
    )
    if acts_at_once(out):  # a person's approval may come much later: read then
        keep_planned(services, loaded.row)
    return out


def acts_at_once(prepared: dict[str, Any]) -> bool:
    """Whether the workflow goes from its plan straight to the plan's first action: an autonomous
    runbook, confidently chosen, that can run (as `flow._remediate` decides)."""
    runbook = prepared.get("runbook")
    if prepared["tier"] == "human_only" or runbook is None or prepared.get("refused"):
        return False
    tier = max(prepared["tier"], runbook["tier"], key=lambda t: TIER_RANK[t])
    confident = prepared["confidence"] >= prepared["escalate_threshold"]
    return tier == "autonomous" and confident and bool(runbook["steps"])


def _tier_and_threshold(incident: dict[str, Any], policy: WorkflowPolicy) -> tuple[str, float]:
    tier = incident.get("tier") if incident.get("kind") == "alert" else policy.detected.tier
    if tier not in TIERS:
        tier = "human_only"
    threshold = incident.get("escalate_threshold")
    return str(tier), policy.escalate_threshold if threshold is None else float(threshold)


def gather(incident: dict[str, Any]) -> dict[str, Any]:
    """What is known of the problem, kept with the workflow: the alert (labels, annotations, its
    source) or the detector's signals (kinds, endpoints, evidence), and the incident's history."""
    context: dict[str, Any] = {
        "incident": incident.get("id"),
        "severity": incident.get("severity"),
        "services": incident.get("services") or [],
        "opened_at": incident.get("opened_at"),
        "reopened": incident.get("reopened", 0),
    }
    if incident.get("kind") == "alert":
        alert = incident.get("alert") or {}
        context["alert"] = {
            "labels": incident.get("labels") or {},
            "annotations": alert.get("annotations") or {},
            "generator_url": alert.get("generator_url"),
            "notifications": incident.get("notifications"),
        }
    else:
        context["signals"] = [
            {k: s.get(k) for k in ("kind", "service", "endpoint", "fingerprint", "severity")}
            for s in (incident.get("signals") or [])[:20]
        ]
        context["trace_ids"] = (incident.get("trace_ids") or [])[:10]
    return context


def action_context(services: Services, loaded: Loaded) -> ActionContext:
    return ActionContext(policy=loaded.policy.actions, http=services.outbound, ledger=services.ledger)


async def dry_runs(loaded: Loaded, services: Services) -> tuple[list[dict[str, Any]], str | None]:
    """Each step of the runbook as it would run now; the first refusal (by the policy) if any."""
    context = action_context(services, loaded)
    plans: list[dict[str, Any]] = []
    refused = None
    for step in loaded.runbook().spec.steps:
        try:
            found = await plan(step.action_step(), context)
        except ActionError as exc:
            return plans, f"{step.action}: {exc}"
        plans.append(found.model_dump(mode="json"))
        refused = refused or found.refused
    return plans, refused


async def record_action(
    services: Services, loaded: Loaded, index: int, result: ActionResult, started: datetime, *, final: bool
) -> dict[str, Any]:
    summary = {
        "index": index,
        "action": result.action,
        "target": result.target,
        "result": result.status,
        "description": scrub(result.description),
        "dry_run": result.status == "dry_run",
        "repeated": result.repeated,
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
    }
    if final:
        await record_step(
            services, loaded, "execute", result.status, summary, body=partial(_executed, index, result.status)
        )
    else:
        await emit(services, loaded.row, "execute", "retrying", summary)
    return result.model_dump(mode="json")


def _executed(index: int, outcome: str, row: WorkflowRow) -> dict[str, Any] | None:
    """An action's record, worked out from the row as stored: None when it is there already
    (DBOS ran the step again after a crash between our record and its checkpoint: the action's
    idempotency key made the call a no-op, and its record must not double either)."""
    recorded = any(
        entry.get("step") == "execute" and entry.get("index") == index and entry.get("result") == outcome
        for entry in row.body.get("steps", [])
    )
    if recorded:
        return None
    acted = outcome in ("done", "skipped") and "acted_at" not in row.body
    return {"acted_at": time.time()} if acted else {}


def keep_planned(services: Services, row: WorkflowRow) -> None:
    """The row as its plan was recorded, for the action steps that follow (what they read of
    it, the chosen runbook and the ticket, never changes after): they need not read it again."""
    kept = {k: row.body[k] for k in ("runbook", "ticket") if k in row.body}
    planned = services.planned
    planned.pop(row.id, None)
    while len(planned) >= PLANNED_KEPT:
        planned.pop(next(iter(planned)))
    planned[row.id] = WorkflowRow(
        **{c: getattr(row, c) for c in ("id", "project_id", "incident_id", "status", "tier", "runbook_id")},
        started_at=row.started_at,
        updated_at=row.updated_at,
        body=kept,
    )


async def load_planned(services: Services, workflow_id: str) -> Loaded:
    """What an action step needs of its workflow: kept by its plan's record in this process, else
    read (a workflow recovered after a restart, or one whose plan was recorded long ago)."""
    row = services.planned.get(workflow_id)
    if row is None:
        return await load(services, workflow_id, incident=False)
    return Loaded(row, {}, await services.workflows.policy(row.project_id))


async def record_undo(
    services: Services, loaded: Loaded, index: int, result: ActionResult | None
) -> dict[str, Any]:
    if result is None:
        summary: dict[str, Any] = {
            "index": index,
            "result": "none",
            "description": "no way back for this step",
        }
    else:
        summary = {"index": index, "result": result.status, "description": scrub(result.description)}
    await record_step(services, loaded, "rollback", summary["result"], summary)
    return summary


async def finish(services: Services, workflow_id: str, status: str, summary: str) -> str:
    services.planned.pop(workflow_id, None)
    loaded = await load(services, workflow_id)
    # the status and the last step in one transaction: whoever sees the status sees every step
    await record_step(
        services,
        loaded,
        "finish",
        status,
        {"summary": summary},
        columns={"status": status},
        body={"outcome": summary, "ended_at": time.time()},
    )
    ref = ticket_ref(loaded)
    text = f"**{status}**: {scrub(summary)}"
    if ref is not None and status == "resolved":
        await ticket_call(services, loaded, "close", lambda system: system.close(ref, text))
    elif ref is not None:
        await ticket_call(services, loaded, "comment", lambda system: system.comment(ref, text))
        if status in ESCALATED:
            await ticket_call(services, loaded, "label", lambda system: system.label(ref, ["escalated"]))
    if status in ESCALATED:
        await escalate_to_sinks(services, loaded, status, summary)
    return status
