"""The approval gate's steps: ask for a person's answer, read it, or let it expire.

The answer itself is stored by the API before the workflow hears of it (`WorkflowStore.decide`),
so these steps only ever read what was decided."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from vigil.errors import Conflict
from vigil.workflow.approval_store import aware
from vigil.workflow.proposals import approval_reason
from vigil.workflow.steps import load, record_step

if TYPE_CHECKING:
    from vigil.workflow.engine import Services


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
    await record_step(
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
        await record_step(
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
