"""What each step of the workflow does, on the main event loop: read and write the database, call
Prometheus, record an event (the live streams) and an audit entry for every step."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

from vigil.actions.base import ActionError, ActionResult
from vigil.actions.context import ActionContext
from vigil.actions.registry import plan
from vigil.alerts.models import TIERS
from vigil.bus.topology import outputs_subject, workflow_events_subject
from vigil.errors import Conflict
from vigil.learning.rules import revise as learned
from vigil.masking import mask_urls_in_text, scrub
from vigil.outputs import OutputEnvelope
from vigil.store.models import WorkflowRow
from vigil.store.workflow_repo import WorkflowRepo
from vigil.tickets import TicketDraft, TicketRef, TicketSystem, build_ticket_system
from vigil.workflow.analysis import investigate
from vigil.workflow.policy import WorkflowPolicy
from vigil.workflow.proposals import approval_reason, proposed_analysis
from vigil.workflow.runbooks import TIER_RANK, Runbook, RunbookSpec
from vigil.workflow.store import aware

if TYPE_CHECKING:
    from vigil.workflow.engine import Services

ACTOR = "workflow"
ESCALATED = frozenset({"escalated", "rolled_back"})
_ESCALATION_NAMESPACE = uuid.UUID("0b6f2c1e-3d4a-4f5e-9a7b-8c9d0e1f2a3b")
T = TypeVar("T")
log = logging.getLogger(__name__)


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


async def ticket_call(
    services: Services, loaded: Loaded, what: str, call: Callable[[TicketSystem], Awaitable[T]]
) -> T | None:
    """A call to the project's ticket system, if it has one. A ticket that cannot be written is
    noted on the workflow, never a reason to stop it."""
    spec = loaded.policy.tickets
    if spec is None:
        return None
    system = build_ticket_system(spec)
    try:
        return await call(system)
    except Exception as exc:
        log.warning("ticket not updated", extra={"workflow": loaded.row.id, "what": what, "error": str(exc)})
        await emit(services, loaded.row, "ticket", "failed", {"what": what, "error": scrub(str(exc))})
        return None
    finally:
        await system.aclose()


def ticket_ref(loaded: Loaded) -> TicketRef | None:
    raw = loaded.row.body.get("ticket")
    return TicketRef.model_validate(raw) if raw else None


async def escalate_to_sinks(services: Services, loaded: Loaded, status: str, summary: str) -> None:
    """Escalations go to the project's sinks (webhooks, Slack) as an output of the workflow."""
    if services.bus is None:
        return
    envelope = OutputEnvelope(
        id=str(uuid.uuid5(_ESCALATION_NAMESPACE, loaded.row.id)),
        project_id=loaded.row.project_id,
        request_id=loaded.row.id,
        pipeline=None,
        batch_records=None,
        received_at=datetime.now(UTC),
        payload={
            "kind": "escalation",
            "workflow_id": loaded.row.id,
            "incident_id": loaded.row.incident_id,
            "title": loaded.incident.get("title", ""),
            "status": status,
            "summary": summary,
            "ticket": loaded.row.body.get("ticket"),
        },
    )
    await services.bus.publish(
        outputs_subject(loaded.row.project_id),
        orjson.dumps(envelope.model_dump(mode="json")),
        msg_id=envelope.id,
    )


async def emit(services: Services, row: WorkflowRow, step: str, status: str, summary: dict[str, Any]) -> None:
    event_id = await services.workflows.add_event(
        row.project_id, row.id, row.incident_id, step, status, summary
    )
    if services.bus is not None and services.bus.connected:
        # the streams read the events table; this only wakes them, in whichever process they are
        with contextlib.suppress(Exception):
            await services.bus.nc.publish(workflow_events_subject(row.project_id), str(event_id).encode())
    await WorkflowRepo(services.store).audit(
        row.project_id, ACTOR, f"workflow.{step}", row.id, {"status": status, **summary}
    )


async def _step(
    services: Services,
    loaded: Loaded,
    name: str,
    status: str,
    summary: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    columns: dict[str, Any] | None = None,
    more: list[tuple[str, str, dict[str, Any]]] | None = None,
) -> None:
    """Record steps (this one, after `more`) with any changes to the workflow, in one
    transaction; wake the live streams; comment on the ticket."""
    entries = [*(more or []), (name, status, summary)]
    new_row = loaded.row
    row, event_id = await services.workflows.record(
        loaded.row.id,
        entries,
        actor=ACTOR,
        columns=columns,
        body=body,
        create=None if loaded.stored else lambda: new_row,
    )
    loaded.row, loaded.stored = row, True
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
            await _comment(services, loaded, ref, text)


async def _comment(services: Services, loaded: Loaded, ref: TicketRef, text: str) -> None:
    await ticket_call(services, loaded, "comment", lambda system: system.comment(ref, text))


def _one_line(summary: dict[str, Any]) -> str:
    return scrub("; ".join(f"{k}: {v}" for k, v in summary.items() if v not in (None, "", [], {})))[:1000]


async def prepare(services: Services, project_id: str, incident_id: str, workflow_id: str) -> dict[str, Any]:
    """Begin (the workflow's row, its ticket), gather the context, analyse (match a runbook) and
    plan (the runbook's dry runs): one step, recorded in one transaction, since none of it acts."""
    incident = await services.workflows.incident(project_id, incident_id)
    policy = await services.workflows.policy(project_id)
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
        found = await services.workflows.find_workflow(workflow_id)
        row = found or services.workflows.new_workflow(workflow_id, project_id, incident_id, tier, body)
        stored = found is not None
    proposal = row.body.get("proposal")
    if proposal:  # an outside agent's proposal always waits at the approval gate
        tier = max(tier, "supervised", key=lambda t: TIER_RANK[t])
    loaded = Loaded(row, incident, policy, stored=stored)
    changes: dict[str, Any] = {}
    ticket = row.body.get("ticket") or await _open_ticket(services, loaded, workflow_id, tier)
    if ticket:
        changes["ticket"] = loaded.row.body["ticket"] = ticket
    entries: list[tuple[str, str, dict[str, Any]]] = [
        ("begin", "done", {"tier": tier, "incident": incident_id})
    ]
    out: dict[str, Any] = {"tier": tier, "escalate_threshold": threshold, "runbook": None}
    if tier == "human_only":
        await _step(services, loaded, *entries[0], body=changes)
        return out
    context = gather(incident)
    runbooks = await WorkflowRepo(services.store).runbooks(project_id)
    if proposal:  # the runbook an agent named, not re-ranked: the approver judges it
        analysis, chosen = proposed_analysis(incident, proposal, runbooks)
    else:
        investigated = await investigate(
            services.analyst, project_id, workflow_id, incident, runbooks, policy.analysis_engine
        )
        context["investigation"] = investigated.brief
        # past cases re-rank runbooks; a rejected plan is not proposed again
        analysis, chosen = await learned(
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
        await _step(services, loaded, *last, more=entries, body=changes)
        return out
    changes["runbook"] = {"id": chosen.id, "spec": chosen.spec.model_dump(mode="json")}
    loaded.row.body = {**loaded.row.body, **changes}
    plans, refused = await dry_runs(loaded, services)
    changes["plan"] = plans
    plan_summary = {"steps": [p["description"] for p in plans], "refused": refused}
    await _step(
        services,
        loaded,
        "plan",
        "refused" if refused else "done",
        plan_summary,
        more=entries,
        body=changes,
        columns={"runbook_id": chosen.id, "status": "running"},
    )
    out["refused"] = refused
    out["runbook"] = {
        "id": chosen.id,
        "tier": chosen.spec.tier,
        "steps": [{"required": step.required} for step in chosen.spec.steps],
        "verify": chosen.spec.verify.model_dump(mode="json"),
    }
    return out


def _tier_and_threshold(incident: dict[str, Any], policy: WorkflowPolicy) -> tuple[str, float]:
    tier = incident.get("tier") if incident.get("kind") == "alert" else policy.detected.tier
    if tier not in TIERS:
        tier = "human_only"
    threshold = incident.get("escalate_threshold")
    return str(tier), policy.escalate_threshold if threshold is None else float(threshold)


async def _open_ticket(
    services: Services, loaded: Loaded, workflow_id: str, tier: str
) -> dict[str, Any] | None:
    if loaded.policy.tickets is None:
        return None
    incident = loaded.incident
    draft = TicketDraft(
        title=f"[vigil] {incident.get('title') or incident.get('id')}"[:255],
        body=_ticket_body(incident, workflow_id, tier),
        labels=["incident", f"severity-{incident.get('severity', 'warning')}"],
    )
    ref = await ticket_call(
        services, loaded, "open", lambda system: system.open(draft, idempotency_key=workflow_id)
    )
    return ref.model_dump(mode="json") if ref is not None else None


def _ticket_body(incident: dict[str, Any], workflow_id: str, tier: str) -> str:
    lines = [
        f"Vigil opened this ticket for incident `{incident.get('id')}` (workflow `{workflow_id}`).",
        "",
        f"- severity: {incident.get('severity')}",
        f"- services: {', '.join(incident.get('services') or []) or '-'}",
        f"- tier: {tier}",
    ]
    if incident.get("source"):
        lines.append(f"- source: {incident['source']} alert")
    return mask_urls_in_text("\n".join(lines))


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


async def request_approval(services: Services, workflow_id: str, why: str) -> dict[str, Any]:
    loaded = await load(services, workflow_id)
    runbook = loaded.row.body["runbook"]
    why = approval_reason(loaded.row.body, why)
    plan = {
        "why": why,
        "runbook": runbook["id"],
        "steps": [p["description"] for p in loaded.row.body.get("plan", [])],
    }
    approval = await services.workflows.request_approval(
        f"{workflow_id}:approval",
        loaded.row.project_id,
        workflow_id,
        loaded.row.incident_id,
        runbook["id"],
        loaded.policy.approval_expiry_s,
        plan,
    )
    expires = aware(approval.expires_at)
    await _step(
        services,
        loaded,
        "approval",
        "pending",
        {"approval_id": approval.id, "why": why, "expires_at": expires.isoformat()},
        columns={"status": "waiting_approval"},
        body={"approval_id": approval.id},
    )
    return {"id": approval.id, "expires_at": expires.timestamp()}


async def read_decision(services: Services, workflow_id: str, approval_id: str) -> str:
    loaded = await load(services, workflow_id)
    approval = await services.workflows.get_approval(loaded.row.project_id, approval_id)
    if approval.status != "pending":
        await _step(
            services,
            loaded,
            "approval",
            approval.status,
            {"approval_id": approval_id, "by": approval.decided_by, "reason": approval.reason},
            columns={"status": "running"},
        )
    return approval.status


async def expire(services: Services, workflow_id: str, approval_id: str) -> str:
    loaded = await load(services, workflow_id)
    with contextlib.suppress(Conflict):  # answered at the last moment: that answer stands
        await services.workflows.decide(
            loaded.row.project_id, approval_id, "expired", "vigil", "no answer before it expired"
        )
    return await read_decision(services, workflow_id, approval_id)


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
    if final and _execution_recorded(loaded, index, result.status):
        # DBOS ran the step again after a crash between our record and its checkpoint: the
        # action's idempotency key made the call a no-op, and its record must not double either
        return result.model_dump(mode="json")
    if final:
        acted = result.status in ("done", "skipped") and "acted_at" not in loaded.row.body
        body = {"acted_at": time.time()} if acted else None
        await _step(services, loaded, "execute", result.status, summary, body=body)
    else:
        await emit(services, loaded.row, "execute", "retrying", summary)
    return result.model_dump(mode="json")


def _execution_recorded(loaded: Loaded, index: int, outcome: str) -> bool:
    return any(
        entry.get("step") == "execute" and entry.get("index") == index and entry.get("result") == outcome
        for entry in loaded.row.body.get("steps", [])
    )


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
    await _step(services, loaded, "rollback", summary["result"], summary)
    return summary


async def verify_cleared(services: Services, workflow_id: str) -> dict[str, Any]:
    loaded = await load(services, workflow_id)
    verify = loaded.runbook().spec.verify
    checks: dict[str, bool] = {}
    if loaded.incident.get("kind") == "alert":
        if verify.alert_resolved:
            checks["alert resolved"] = loaded.incident.get("status") == "resolved"
    elif verify.signal_gone:
        acted = float(loaded.row.body.get("acted_at") or 0)
        last = float(loaded.incident.get("last_seen_at") or 0)
        checks["signal gone"] = loaded.incident.get("status") == "resolved" or last < acted
    if verify.promql:
        checks["promql"] = await _promql_holds(services, loaded.policy.prometheus_url, verify.promql)
    cleared = all(checks.values())
    summary = (
        ", ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in checks.items()) or "nothing to check"
    )
    await _step(services, loaded, "verify", "cleared" if cleared else "not_cleared", {"checks": checks})
    return {"cleared": cleared, "summary": summary}


async def _promql_holds(services: Services, prometheus_url: str | None, expr: str) -> bool:
    """True when the expression returns a result (as an alerting rule's condition)."""
    if not prometheus_url:
        return False
    try:
        answer = await services.http.get(
            prometheus_url.rstrip("/") + "/api/v1/query", params={"query": expr}, timeout=10
        )
        data = answer.json()
    except (httpx.HTTPError, ValueError):
        return False
    if answer.status_code != 200 or data.get("status") != "success":
        return False
    result = data.get("data", {}).get("result")
    return bool(result) if isinstance(result, list) else result is not None


async def finish(services: Services, workflow_id: str, status: str, summary: str) -> str:
    loaded = await load(services, workflow_id)
    # the status and the last step in one transaction: whoever sees the status sees every step
    await _step(
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
