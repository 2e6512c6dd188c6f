"""Proposals: an outside agent (the MCP server's clients) asks for one of the project's configured
runbooks, or one step of it, to be run for an open incident. A model never writes a command: it can
only name what people configured, and a proposal always waits at the approval gate.

A proposal is a workflow of the incident, stored as `proposed` before anyone is told it was taken
(so it is never lost); the workflow engine starts it at once where it runs in the same process,
and its sweep starts any proposal still waiting. Its workflow then runs as any other: the plan
(dry runs), the approval, the steps, verification, roll back or resolve.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vigil.errors import Conflict, Forbidden, ValidationFailed
from vigil.store.models import WorkflowRow
from vigil.store.repo import Store, utcnow
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.runbooks import RUNBOOK_ID, TIER_RANK, Runbook, RunbookSpec
from vigil.workflow.store import WorkflowStore

PROPOSED = "proposed"
ACTIVE = frozenset({PROPOSED, "running", "waiting_approval"})


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: str = Field(min_length=1, max_length=64)
    runbook_id: str = Field(pattern=RUNBOOK_ID)
    step: str | None = Field(
        default=None, max_length=200, description="One step only: its name, or its number from 1."
    )
    reason: str = Field(min_length=1, max_length=2000, description="Why: shown to the approver.")
    by: str = Field(min_length=1, max_length=200, description="Who proposes (the agent).")


def choose_step(spec: RunbookSpec, step: str | None) -> tuple[RunbookSpec, int | None]:
    """The runbook as it will run: whole, or only the named step (and the step's index)."""
    if step is None:
        return spec, None
    names = [s.name for s in spec.steps]
    if step in names:
        index = names.index(step)
    elif step.isdigit() and 1 <= int(step) <= len(spec.steps):
        index = int(step) - 1
    else:
        known = ", ".join(f"{i + 1}" + (f" ({n})" if n else "") for i, n in enumerate(names))
        raise ValidationFailed(f"step: the runbook has no step {step!r}; its steps are {known}")
    return spec.model_copy(update={"steps": [spec.steps[index]]}), index


def workflow_tier(incident: dict[str, Any], detected_tier: str) -> str:
    """The tier the incident's own workflow would have, raised to `supervised`: a proposal always
    waits for a person's approval."""
    tier = incident.get("tier") if incident.get("kind") == "alert" else detected_tier
    tier = tier if tier in TIER_RANK else "human_only"
    return max(str(tier), "supervised", key=lambda t: TIER_RANK[t])


class Proposals:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._workflows = WorkflowStore(store)
        self._repo = WorkflowRepo(store)

    async def propose(self, project_id: str, proposal: Proposal) -> tuple[WorkflowRow, bool]:
        """The proposal's workflow, and whether it is new (the same proposal while one is still
        under way is that one)."""
        incident = (await self._store.get_incident(project_id, proposal.incident_id)).body
        policy = await self._workflows.policy(project_id)
        if not policy.proposals:
            raise Forbidden("the project's workflow policy takes no proposals (`proposals: false`)")
        if incident.get("status") != "open":
            raise Conflict(
                f"incident {proposal.incident_id!r} is {incident.get('status')}: nothing to act on"
            )
        row = await self._repo.get_runbook(project_id, proposal.runbook_id)
        spec, _ = choose_step(RunbookSpec.model_validate(row.spec), proposal.step)
        tier = max(workflow_tier(incident, policy.detected.tier), spec.tier, key=lambda t: TIER_RANK[t])
        if tier == "human_only":
            raise Conflict(
                f"incident {proposal.incident_id!r} or runbook {proposal.runbook_id!r} is human_only: "
                "a person must act, nothing may be proposed"
            )
        for existing in await self._workflows.list_workflows(
            project_id, incident_id=proposal.incident_id, limit=1000
        ):
            if existing.status in ACTIVE and _same(existing.body.get("proposal"), proposal):
                return existing, False
        workflow_id = f"wf-{proposal.incident_id}-proposal-{uuid.uuid4().hex[:10]}"
        now = utcnow()
        body = {
            "incident_id": proposal.incident_id,
            "title": incident.get("title", ""),
            "steps": [],
            "source": "proposal",
            "proposal": proposal.model_dump(mode="json"),
        }
        created = WorkflowRow(
            id=workflow_id,
            project_id=project_id,
            incident_id=proposal.incident_id,
            status=PROPOSED,
            tier=tier,
            runbook_id=proposal.runbook_id,
            started_at=now,
            updated_at=now,
            body=body,
        )
        async with self._store.session() as s:
            s.add(created)
            await s.commit()
        await self._repo.audit(
            project_id, proposal.by, "workflow.proposed", workflow_id, proposal.model_dump(mode="json")
        )
        return created, True


def _same(stored: Any, proposal: Proposal) -> bool:
    if not isinstance(stored, dict):
        return False
    return (stored.get("runbook_id"), stored.get("step")) == (proposal.runbook_id, proposal.step)


def proposed_analysis(
    incident: dict[str, Any], proposal: dict[str, Any], runbooks: list[Runbook]
) -> tuple[dict[str, Any], Runbook | None]:
    """In place of the rules engine's analysis: the runbook the proposal names, as it will run."""
    named = str(proposal["runbook_id"])
    configured = next((r for r in runbooks if r.id == named), None)
    chosen = None
    where = f" step {proposal['step']}" if proposal.get("step") else ""
    summary = f"{proposal['by']} proposed runbook {named!r}{where}: {proposal['reason']}"
    if configured is None:
        summary += f" (runbook {named!r} is no longer configured)"
    else:
        try:
            spec, _ = choose_step(configured.spec, proposal.get("step"))
            chosen = Runbook(id=configured.id, spec=spec)
        except ValidationFailed as exc:
            summary += f" ({exc.message})"
    analysis = {
        "engine": "proposal",
        "summary": summary,
        "confidence": 0.0,
        "runbook_id": chosen.id if chosen else None,
        "candidates": [named],
        "citations": [{"kind": "incident", "id": incident.get("id")}],
        "proposal": proposal,
    }
    return analysis, chosen


def approval_reason(body: dict[str, Any], why: str) -> str:
    proposal = body.get("proposal")
    if not isinstance(proposal, dict):
        return why
    return f"proposed by {proposal['by']}: {proposal['reason']}"[:2000]
