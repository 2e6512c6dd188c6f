"""What the workflow tells people and other systems: its events (the live streams and the audit log),
its ticket (opened at the start, a comment per step, closed or labelled at the end) and its
escalations to the project's sinks. None of these may stop a workflow."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from vigil.bus.topology import outputs_subject, workflow_events_subject
from vigil.masking import mask_urls_in_text, scrub
from vigil.outputs import OutputEnvelope
from vigil.store.models import WorkflowRow
from vigil.store.workflow_repo import WorkflowRepo
from vigil.tickets import TicketDraft, TicketRef, TicketSystem, build_ticket_system

if TYPE_CHECKING:
    from vigil.workflow.engine import Services
    from vigil.workflow.steps import Loaded

ACTOR = "workflow"
ESCALATED = frozenset({"escalated", "rolled_back"})
_ESCALATION_NAMESPACE = uuid.UUID("0b6f2c1e-3d4a-4f5e-9a7b-8c9d0e1f2a3b")
T = TypeVar("T")
log = logging.getLogger(__name__)


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


async def comment_on_ticket(services: Services, loaded: Loaded, ref: TicketRef, text: str) -> None:
    await ticket_call(services, loaded, "comment", lambda system: system.comment(ref, text))


async def open_ticket(
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
