"""An investigation-only workflow, for pasted logs: the records (already redacted), the rules
engine's analysis and the configured runbook it recommends, then the end. It never acts: a
recommended runbook runs only when a person starts it.

    begin -> context (records, templates, services) -> analyse (cause, confidence, runbook, citations) -> finish

Steps are recorded like any workflow's (events for the live streams, audit entries), so the
workflow is read and streamed through the same routes. It runs as a DBOS workflow where this
process runs the workflow engine, and as a task of the API process otherwise: it needs nothing
but the database, and it is short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from typing import Any

from vigil.agents.builtin.models import Evidence
from vigil.bus.client import Bus
from vigil.bus.topology import workflow_events_subject
from vigil.records import FlatRecord
from vigil.store.models import WorkflowRow
from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow import pasted
from vigil.workflow.store import WorkflowStore

log = logging.getLogger(__name__)

ACTOR = "workflow"
STATUS = "analysed"
KEPT_RECORDS = 1000
"""Records kept with the workflow to show; every template is kept with its count."""
_tasks: set[asyncio.Task[Any]] = set()


def new_ids() -> tuple[str, str]:
    """(workflow id, the id that stands for its incident): pasted logs open no incident."""
    token = uuid.uuid4().hex[:20]
    return f"wf-pasted-{token}", f"pasted-{token}"


def templates_of(records: list[FlatRecord]) -> list[dict[str, Any]]:
    counts = Counter(r["template_id"] for r in records)
    first: dict[str, FlatRecord] = {}
    services: dict[str, set[str]] = {}
    for record in records:
        first.setdefault(record["template_id"], record)
        services.setdefault(record["template_id"], set()).add(record["resourceAttributes"]["service.name"])
    return [
        {
            "template_id": template_id,
            "template": first[template_id]["template"],
            "count": count,
            "services": sorted(services[template_id]),
        }
        for template_id, count in counts.most_common()
    ]


async def open_investigation(store: Store, project_id: str, records: list[FlatRecord], lines: int) -> str:
    """The workflow's row with its redacted records (the first of them), every template and the
    evidence the analysis reads; returns its id."""
    workflow_id, incident_id = new_ids()
    services = sorted({r["resourceAttributes"]["service.name"] for r in records})
    body = {
        "incident_id": incident_id,
        "title": f"Pasted logs: {lines:,} lines, {len(records):,} records",
        "source": "pasted",
        "steps": [],
        "services": services,
        "records": records[:KEPT_RECORDS],
        "record_count": len(records),
        "templates": templates_of(records),
    }
    body["evidence"] = pasted.evidence_of(project_id, workflow_id, records).model_dump(mode="json")
    await WorkflowStore(store).open_workflow(workflow_id, project_id, incident_id, "human_only", body)
    return workflow_id


async def run(store: Store, bus: Bus | None, workflow_id: str) -> str:
    """Analyse the workflow's records and record its steps; returns its final status."""
    workflows = WorkflowStore(store)
    async with store.session() as s:
        row = await s.get(WorkflowRow, workflow_id)
    assert row is not None, workflow_id
    if row.status == STATUS:  # replayed after it finished
        return STATUS
    project_id = row.project_id
    evidence = Evidence.model_validate(row.body["evidence"])
    runbooks = await WorkflowRepo(store).runbooks(project_id)
    analysis = await asyncio.to_thread(pasted.analyse, evidence, runbooks)
    summary = {
        "engine": analysis.engine,
        "summary": analysis.summary,
        "confidence": analysis.confidence,
        "runbook": analysis.runbook_id,
        "known": analysis.known,
    }
    outcome = f"{analysis.error_type}: {analysis.root_cause}" + (
        f" Recommended runbook: {analysis.runbook_id} (not run: a person starts it)."
        if analysis.runbook_id
        else ""
    )
    entries = [
        ("begin", "done", {"tier": "human_only", "source": "pasted"}),
        (
            "context",
            "done",
            {"services": row.body.get("services", []), "records": row.body.get("record_count", 0)},
        ),
        ("analyse", "done", summary),
        ("finish", STATUS, {"summary": outcome}),
    ]
    saved = analysis.model_dump(mode="json") | {
        "citations": [{"kind": "template", "id": c.template_id, "count": c.count} for c in analysis.evidence]
    }
    _, event_id = await workflows.record(
        workflow_id,
        entries,
        actor=ACTOR,
        columns={"status": STATUS, "runbook_id": analysis.runbook_id},
        body={"analysis": saved, "outcome": outcome, "ended_at": time.time()},
    )
    if bus is not None and bus.connected:
        with contextlib.suppress(Exception):
            await bus.nc.publish(workflow_events_subject(project_id), str(event_id).encode())
    return STATUS


def run_in_background(store: Store, bus: Bus | None, workflow_id: str) -> None:
    """Where no workflow engine runs in this process: a task of its own, kept until it ends."""

    async def guarded() -> None:
        try:
            await run(store, bus, workflow_id)
        except Exception:
            log.exception("investigation failed", extra={"workflow": workflow_id})
            with contextlib.suppress(Exception):
                await WorkflowStore(store).record(
                    workflow_id,
                    [("finish", "failed", {"summary": "the analysis failed; see Vigil's log"})],
                    actor=ACTOR,
                    columns={"status": "failed"},
                )

    task = asyncio.create_task(guarded(), name=f"investigation-{workflow_id}")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
