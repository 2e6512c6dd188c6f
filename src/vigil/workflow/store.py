"""Workflows, their events and projects' policies in the database (approvals: `approval_store`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, Update, bindparam, insert, select, update

from vigil.errors import NotFound, ValidationFailed
from vigil.learning.store import NewCase, forget_cases, write_case
from vigil.store.models import (
    AuditEntry,
    IncidentRow,
    ProjectPolicy,
    WorkflowEvent,
    WorkflowRow,
)
from vigil.store.repo import Store, reveal, utcnow
from vigil.workflow.approval_store import ApprovalRecords, once
from vigil.workflow.config_cache import config_cache
from vigil.workflow.policy import WorkflowPolicy

log = logging.getLogger(__name__)
Amend = Callable[[WorkflowRow], dict[str, Any] | None]
"""Body changes worked out from the row as stored (None: recorded already, write nothing)."""
_WORKFLOWS = cast(Table, WorkflowRow.__table__)
_EVENTS = cast(Table, WorkflowEvent.__table__)
_AUDIT = cast(Table, AuditEntry.__table__)
_INCIDENTS = cast(Table, IncidentRow.__table__)
# Statements made once (SQLAlchemy reuses their compiled form; one built per call costs about 100 µs
# more, and every step of every workflow runs them).
_WORKFLOW_BY_ID = select(_WORKFLOWS).where(_WORKFLOWS.c.id == bindparam("workflow_id"))
_WORKFLOW_INSERT = insert(_WORKFLOWS)
_EVENTS_INSERT = insert(_EVENTS).returning(_EVENTS.c.id)
_AUDIT_INSERT = insert(_AUDIT)
_INCIDENT_BODY = select(_INCIDENTS.c.body).where(
    _INCIDENTS.c.id == bindparam("incident_id"), _INCIDENTS.c.project_id == bindparam("project_id")
)
_WORKFLOW_UPDATES: dict[tuple[str, ...], Update] = {}

OPEN_STATUSES = ("running", "waiting_approval")
"""A workflow's statuses before its end: a past case's outcome does not change between them."""
SECRET_MASK = "**********"
"""What pydantic shows for a SecretStr, and so the API for a policy's secrets."""
_SECRET_PATHS = (
    ("actions", "kubernetes", "connection", "token"),
    ("tickets", "token"),
    ("tickets", "api_key"),
)


def _holder(spec: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    for key in path:
        value = spec.get(key)
        if not isinstance(value, dict):
            return None
        spec = value
    return spec


class WorkflowStore(ApprovalRecords):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def policy(self, project_id: str) -> WorkflowPolicy:
        """The project's policy (shared: never changed by its readers)."""
        return await config_cache(self.store).get("policy", project_id, lambda: self._read_policy(project_id))

    async def _read_policy(self, project_id: str) -> WorkflowPolicy:
        async with self.store.session() as s:
            row = await s.get(ProjectPolicy, project_id)
        if row is None:
            return WorkflowPolicy()
        return WorkflowPolicy.model_validate(
            self.store.open("policies", row.spec, f"workflow policy of project {project_id}")
        )

    async def put_policy(self, project_id: str, policy: WorkflowPolicy) -> None:
        await self.store.get_project(project_id)
        plain = reveal(policy)
        await self._keep_masked(project_id, plain)
        spec = self.store.seal("policies", plain)  # secrets kept, encrypted
        async with self.store.session() as s:
            row = await s.get(ProjectPolicy, project_id)
            if row is None:
                s.add(ProjectPolicy(project_id=project_id, spec=spec, updated_at=utcnow()))
            else:
                row.spec, row.updated_at = spec, utcnow()
            await s.commit()
        config_cache(self.store).forget(project_id)

    async def _keep_masked(self, project_id: str, plain: dict[str, Any]) -> None:
        """A secret sent back as the mask the API shows keeps its stored value (a policy read,
        edited and written back must not lose its tokens)."""
        stored: dict[str, Any] | None = None
        for path in _SECRET_PATHS:
            holder = _holder(plain, path[:-1])
            if holder is None or holder.get(path[-1]) != SECRET_MASK:
                continue
            if stored is None:
                stored = reveal(await self.policy(project_id))
            kept = _holder(stored, path[:-1])
            if kept is None or kept.get(path[-1]) in (None, SECRET_MASK):
                raise ValidationFailed(f"{'.'.join(path)}: the masked value was sent, and none is stored")
            holder[path[-1]] = kept[path[-1]]

    async def open_workflow(
        self, workflow_id: str, project_id: str, incident_id: str, tier: str, body: dict[str, Any]
    ) -> WorkflowRow:
        """The workflow's row, made on its first step (a repeated step finds it)."""
        return await once(
            self.store,
            WorkflowRow,
            workflow_id,
            lambda: self.new_workflow(workflow_id, project_id, incident_id, tier, body),
        )

    @staticmethod
    def new_workflow(
        workflow_id: str, project_id: str, incident_id: str, tier: str, body: dict[str, Any]
    ) -> WorkflowRow:
        """A workflow's row, not stored yet (`record` stores it with its first steps)."""
        now = utcnow()
        return WorkflowRow(
            id=workflow_id,
            project_id=project_id,
            incident_id=incident_id,
            status="running",
            tier=tier,
            runbook_id=None,
            started_at=now,
            updated_at=now,
            body=body,
        )

    async def record(
        self,
        workflow_id: str,
        entries: list[tuple[str, str, dict[str, Any]]],
        *,
        actor: str,
        columns: dict[str, Any] | None = None,
        body: dict[str, Any] | Amend | None = None,
        create: Callable[[], WorkflowRow] | None = None,
        case: NewCase | None = None,
    ) -> tuple[WorkflowRow, int]:
        """Steps done, in one transaction: the workflow's columns and body changes, its step list,
        an event and an audit entry per step, and the learning case of its analysis; the row is
        made by `create` if there is none yet. `body` may be a function of the row as stored,
        returning the changes, or None when the steps are recorded already (then nothing is
        written). Returns the row and the last event's id (0 when nothing was written)."""
        work = partial(_record, workflow_id, entries, actor, columns or {}, body or {}, create)
        if case is None:
            recorded = await self.store.transaction(work)
        else:
            try:
                recorded, created_at = await self.store.transaction(partial(_with_case, work, case))
            except Exception:  # a case that cannot be written must never stop a workflow
                log.exception("case not recorded", extra={"workflow": workflow_id})
                recorded = await self.store.transaction(work)
            else:
                case.joined(created_at)
        if (columns or {}).get("status") not in (None, *OPEN_STATUSES):
            forget_cases(self.store, recorded[0].project_id)
        return recorded

    async def find_workflow(self, workflow_id: str) -> WorkflowRow | None:
        found, _ = await self.store.transaction(partial(_find, workflow_id, False))
        return found

    async def incident_and_workflow(
        self, project_id: str, incident_id: str, workflow_id: str
    ) -> tuple[dict[str, Any], WorkflowRow | None]:
        """An incident's body and its workflow's row if there is one, read together."""
        body, row = await self.store.transaction(
            partial(_incident_and_row, project_id, incident_id, workflow_id)
        )
        if body is None:
            raise NotFound(f"no incident {incident_id!r} in project {project_id!r}")
        return body, row

    async def workflow_and_incident(
        self, workflow_id: str
    ) -> tuple[WorkflowRow | None, dict[str, Any] | None]:
        """The workflow's row and its incident's body, read together."""
        return await self.store.transaction(partial(_find, workflow_id, True))

    async def incident(self, project_id: str, incident_id: str) -> dict[str, Any]:
        """An incident's body (`Store.get_incident` without the ORM)."""
        body = await self.store.transaction(partial(_incident, project_id, incident_id))
        if body is None:
            raise NotFound(f"no incident {incident_id!r} in project {project_id!r}")
        return body

    async def get_workflow(self, project_id: str, workflow_id: str) -> WorkflowRow:
        async with self.store.session() as s:
            row = await s.get(WorkflowRow, workflow_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"no workflow {workflow_id!r} in project {project_id!r}")
        return row

    async def list_workflows(
        self, project_id: str, *, status: str | None = None, incident_id: str | None = None, limit: int = 100
    ) -> Sequence[WorkflowRow]:
        query = select(WorkflowRow).where(WorkflowRow.project_id == project_id)
        if status is not None:
            query = query.where(WorkflowRow.status == status)
        if incident_id is not None:
            query = query.where(WorkflowRow.incident_id == incident_id)
        async with self.store.session() as s:
            return (await s.scalars(query.order_by(WorkflowRow.updated_at.desc()).limit(limit))).all()

    async def workflow_ids(self, project_id: str, incident_id: str) -> list[str]:
        rows = await self.list_workflows(project_id, incident_id=incident_id, limit=1000)
        return [row.id for row in rows]

    async def add_event(
        self,
        project_id: str,
        workflow_id: str,
        incident_id: str,
        step: str,
        status: str,
        summary: dict[str, Any],
    ) -> int:
        async with self.store.session() as s:
            event = WorkflowEvent(
                project_id=project_id,
                workflow_id=workflow_id,
                incident_id=incident_id,
                at=utcnow(),
                step=step,
                status=status,
                summary=summary,
            )
            s.add(event)
            await s.commit()
            return event.id

    async def events(
        self,
        project_id: str,
        *,
        workflow_id: str | None = None,
        incident_id: str | None = None,
        after_id: int = 0,
        limit: int = 500,
    ) -> Sequence[WorkflowEvent]:
        query = select(WorkflowEvent).where(
            WorkflowEvent.project_id == project_id, WorkflowEvent.id > after_id
        )
        if workflow_id is not None:
            query = query.where(WorkflowEvent.workflow_id == workflow_id)
        if incident_id is not None:
            query = query.where(WorkflowEvent.incident_id == incident_id)
        async with self.store.session() as s:
            return (await s.scalars(query.order_by(WorkflowEvent.id).limit(limit))).all()


def _record(
    workflow_id: str,
    entries: list[tuple[str, str, dict[str, Any]]],
    actor: str,
    columns: dict[str, Any],
    body: dict[str, Any] | Amend,
    create: Callable[[], WorkflowRow] | None,
    conn: Connection,
) -> tuple[WorkflowRow, int]:
    """`WorkflowStore.record`'s transaction, in SQLAlchemy Core: it runs for every step of every
    workflow."""
    now = utcnow()
    found = conn.execute(_WORKFLOW_BY_ID, {"workflow_id": workflow_id}).mappings().first()
    if found is not None:
        row = WorkflowRow(**found)
    elif create is not None:
        made = create()  # copied: a transaction run again must start from the row as made
        row = WorkflowRow(**{c.name: getattr(made, c.name) for c in _WORKFLOWS.columns})
    else:
        raise NotFound(f"no workflow {workflow_id!r}")
    if callable(body):
        amended = body(row)
        if amended is None:
            return row, 0
        body = amended
    for key, value in columns.items():
        setattr(row, key, value)
    at = time.time()
    steps = [
        *row.body.get("steps", []),
        *({"step": n, "status": st, "at": at, **sm} for n, st, sm in entries),
    ]
    row.body = {**row.body, **body, "steps": steps}
    row.updated_at = now
    if found is None:
        conn.execute(_WORKFLOW_INSERT, {c.name: getattr(row, c.name) for c in _WORKFLOWS.columns})
    else:
        changed = {**columns, "body": row.body, "updated_at": now}
        values = {f"new_{name}": value for name, value in changed.items()}
        conn.execute(_workflow_update(tuple(changed)), {**values, "workflow_id_": workflow_id})
    if not entries:
        return row, 0
    events = [
        {
            "project_id": row.project_id,
            "workflow_id": workflow_id,
            "incident_id": row.incident_id,
            "at": now,
            "step": name,
            "status": status,
            "summary": summary,
        }
        for name, status, summary in entries
    ]
    event_ids = conn.execute(_EVENTS_INSERT, events).scalars().all()
    audit = [
        {
            "project_id": row.project_id,
            "at": now,
            "actor": actor,
            "kind": f"workflow.{name}",
            "subject": workflow_id,
            "detail": {"status": status, **summary},
        }
        for name, status, summary in entries
    ]
    conn.execute(_AUDIT_INSERT, audit)
    return row, max(event_ids)


def _workflow_update(columns: tuple[str, ...]) -> Update:
    """The update of these columns of a workflow's row, made once per set of columns."""
    statement = _WORKFLOW_UPDATES.get(columns)
    if statement is None:
        statement = (
            update(_WORKFLOWS)
            .where(_WORKFLOWS.c.id == bindparam("workflow_id_"))
            .values({name: bindparam(f"new_{name}") for name in columns})
        )
        _WORKFLOW_UPDATES[columns] = statement
    return statement


def _with_case(
    work: Callable[[Connection], tuple[WorkflowRow, int]], case: NewCase, conn: Connection
) -> tuple[tuple[WorkflowRow, int], datetime]:
    recorded = work(conn)
    return recorded, write_case(case.project_id, case.workflow_id, case.values(), conn)


def _incident_and_row(
    project_id: str, incident_id: str, workflow_id: str, conn: Connection
) -> tuple[dict[str, Any] | None, WorkflowRow | None]:
    found = conn.execute(_WORKFLOW_BY_ID, {"workflow_id": workflow_id}).mappings().first()
    return _incident(project_id, incident_id, conn), None if found is None else WorkflowRow(**found)


def _incident(project_id: str, incident_id: str, conn: Connection) -> dict[str, Any] | None:
    found = conn.execute(_INCIDENT_BODY, {"incident_id": incident_id, "project_id": project_id})
    body: dict[str, Any] | None = found.scalar()
    return body


def _find(
    workflow_id: str, with_incident: bool, conn: Connection
) -> tuple[WorkflowRow | None, dict[str, Any] | None]:
    found = conn.execute(_WORKFLOW_BY_ID, {"workflow_id": workflow_id}).mappings().first()
    if found is None:
        return None, None
    row = WorkflowRow(**found)
    return row, _incident(row.project_id, row.incident_id, conn) if with_incident else None
