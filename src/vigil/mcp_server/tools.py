"""What the MCP server's tools do, for one project at a time: read incidents, workflows, templates,
recent records and evidence, propose a configured runbook, and read what became of it. Every
answer is bounded (items and bytes); the project is always the caller's key's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from vigil.api.workflows import approval_out, workflow_out
from vigil.detect.archive import SEGMENT, EvidenceArchive
from vigil.errors import NotFound, ValidationFailed
from vigil.mcp_server.bounded import MAX_BYTES, bounded, items_within
from vigil.mcp_server.records import RecordQuery, RecordsReader, no_window
from vigil.pipeline.templates import TemplateMiner
from vigil.store.models import WorkflowRow
from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.proposals import Proposal, Proposals
from vigil.workflow.store import WorkflowStore

log = logging.getLogger(__name__)

StartProposal = Callable[[str, str, str], Awaitable[None]]
"""(project, incident, workflow id): the workflow engine starts a stored proposal."""

MAX_ITEMS = 50
MAX_STEPS = 30
APPROVAL_WAIT_S = 5.0
"""How long `propose_action` waits for the workflow to reach its approval before answering."""
_INCIDENT_SUMMARY = (
    "id",
    "kind",
    "title",
    "severity",
    "status",
    "services",
    "opened_at",
    "updated_at",
    "resolved_at",
    "reopened",
)
_FINGERPRINT = re.compile(SEGMENT)


class VigilTools:
    def __init__(
        self,
        store: Store,
        *,
        evidence: EvidenceArchive | None = None,
        start_proposal: StartProposal | None = None,
        records: RecordsReader = no_window,
    ) -> None:
        self._store = store
        self._evidence = evidence
        self._start_proposal = start_proposal
        self._records = records
        self._workflows = WorkflowStore(store)
        self._proposals = Proposals(store)

    async def list_incidents(self, project_id: str, status: str | None, limit: int) -> dict[str, Any]:
        if status not in (None, "open", "resolved"):
            raise ValidationFailed("status: open or resolved")
        rows = await self._store.list_incidents(project_id, status=status, limit=_limit(limit))
        incidents = [{key: row.body.get(key) for key in _INCIDENT_SUMMARY} for row in rows]
        return bounded({"incidents": incidents, "count": len(incidents)})

    async def get_incident(self, project_id: str, incident_id: str) -> dict[str, Any]:
        body = dict((await self._store.get_incident(project_id, incident_id)).body)
        body["workflows"] = await self._workflows.workflow_ids(project_id, incident_id)
        body["signals"] = (body.get("signals") or [])[:20]
        body["timeline"] = (body.get("timeline") or [])[-20:]
        body["fingerprints"] = list(dict.fromkeys(s.get("fingerprint") for s in body["signals"]))
        return bounded(body)

    async def list_workflows(
        self, project_id: str, status: str | None, incident_id: str | None, limit: int
    ) -> dict[str, Any]:
        rows = await self._workflows.list_workflows(
            project_id, status=status, incident_id=incident_id, limit=_limit(limit)
        )
        workflows = [workflow_out(row, full=False) for row in rows]
        return bounded({"workflows": workflows, "count": len(workflows)})

    async def get_workflow(self, project_id: str, workflow_id: str) -> dict[str, Any]:
        row = await self._workflows.get_workflow(project_id, workflow_id)
        return bounded(await self._workflow_answer(row, full=True))

    async def list_runbooks(self, project_id: str) -> dict[str, Any]:
        await self._store.get_project(project_id)
        runbooks = [
            {
                "id": runbook.id,
                "title": runbook.spec.title,
                "description": runbook.spec.description[:500],
                "tier": runbook.spec.tier,
                "steps": [
                    {"step": index + 1, "name": step.name, "action": step.action, "required": step.required}
                    for index, step in enumerate(runbook.spec.steps)
                ],
            }
            for runbook in await WorkflowRepo(self._store).runbooks(project_id)
        ]
        kept, _ = items_within(runbooks[:MAX_ITEMS], MAX_BYTES - 200)
        return bounded({"runbooks": kept, "count": len(runbooks), "omitted": len(runbooks) - len(kept)})

    async def query_templates(self, project_id: str, contains: str | None, limit: int) -> dict[str, Any]:
        """The project's log templates with how many records each took, the largest first."""
        await self._store.get_project(project_id)
        state = await self._store.load_template_state(project_id)
        found = TemplateMiner.from_state(state.encode()).templates() if state else []
        if contains:
            needle = contains.lower()
            found = [t for t in found if needle in t.template.lower()]
        found.sort(key=lambda t: t.cluster_size, reverse=True)
        templates = [
            {"template_id": t.template_id, "template": t.template[:1000], "count": t.cluster_size}
            for t in found[: _limit(limit)]
        ]
        kept, _ = items_within(templates, MAX_BYTES - 200)
        return bounded({"matched": len(found), "templates": kept, "omitted": len(found) - len(kept)})

    async def query_records(self, project_id: str, query: RecordQuery) -> dict[str, Any]:
        await self._store.get_project(project_id)
        page = await self._records(project_id, query)
        kept, omitted = items_within(page.records[: query.limit], MAX_BYTES - 1000)
        return bounded(
            {
                "matched": page.matched,
                "counts": page.counts,
                "records": kept,
                "omitted": omitted,
                "window": page.window,
            }
        )

    async def get_evidence(self, project_id: str, fingerprint: str, limit: int) -> dict[str, Any]:
        """The archived evidence documents of a signal's fingerprint, newest window first."""
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise ValidationFailed("fingerprint: a signal's fingerprint, as an incident lists it")
        await self._store.get_project(project_id)
        if self._evidence is None:
            return {"documents": [], "count": 0, "note": "this Vigil archives no evidence"}
        documents = await self._evidence.get(project_id, fingerprint, max(1, min(limit, 10)))
        kept, omitted = items_within(documents, MAX_BYTES - 200)
        if not kept and documents:  # one document alone is over the cap: cut it down
            return bounded(
                {"documents": documents[:1], "count": len(documents), "omitted": len(documents) - 1}
            )
        return bounded({"documents": kept, "count": len(documents), "omitted": omitted})

    async def propose_action(self, project_id: str, proposal: Proposal) -> dict[str, Any]:
        """Store the proposal, have it started, and wait briefly for its approval to be asked."""
        row, created = await self._proposals.propose(project_id, proposal)
        if created and self._start_proposal is not None:
            try:
                await self._start_proposal(project_id, row.incident_id, row.id)
            except Exception:  # stored already: the workflow's sweep starts it
                log.exception("proposal start deferred to the sweep", extra={"workflow": row.id})
        deadline = asyncio.get_running_loop().time() + APPROVAL_WAIT_S
        while row.status in ("proposed", "running") and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            row = await self._workflows.get_workflow(project_id, row.id)
        answer = await self._workflow_answer(row, full=False)
        answer["created"] = created
        answer["next"] = (
            "A person approves or rejects it (vigil approvals, or the API); read what happened with "
            "get_action_result."
        )
        return bounded(answer)

    async def get_action_result(self, project_id: str, workflow_id: str) -> dict[str, Any]:
        row = await self._workflows.get_workflow(project_id, workflow_id)
        answer = await self._workflow_answer(row, full=False)
        answer["steps"] = row.body.get("steps", [])[-MAX_STEPS:]
        answer["plan"] = row.body.get("plan")
        return bounded(answer)

    async def _workflow_answer(self, row: WorkflowRow, *, full: bool) -> dict[str, Any]:
        answer = workflow_out(row, full=full)
        if full:
            answer["steps"] = (answer.get("steps") or [])[-MAX_STEPS:]
        answer["proposal"] = row.body.get("proposal")
        approval_id = row.body.get("approval_id")
        answer["approval"] = None
        if approval_id:
            with contextlib.suppress(NotFound):
                answer["approval"] = approval_out(
                    await self._workflows.get_approval(row.project_id, approval_id)
                )
        return answer


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_ITEMS))
