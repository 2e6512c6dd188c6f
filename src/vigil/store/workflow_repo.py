"""Runbooks and the audit log in the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select

from vigil.errors import NotFound
from vigil.store.models import AuditEntry, RunbookRow
from vigil.store.repo import Store, utcnow
from vigil.workflow.config_cache import config_cache
from vigil.workflow.runbooks import Runbook, RunbookSpec

_AUDIT = cast(Table, AuditEntry.__table__)


class WorkflowRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def put_runbook(
        self, project_id: str, runbook: Runbook, origin: str = "api"
    ) -> tuple[RunbookRow, bool]:
        """Create or replace; True when it was created."""
        await self._store.get_project(project_id)
        now = utcnow()
        spec = runbook.spec.model_dump(mode="json")
        async with self._store.session() as s:
            row = await s.get(RunbookRow, (project_id, runbook.id))
            created = row is None
            if row is None:
                row = RunbookRow(
                    project_id=project_id,
                    id=runbook.id,
                    spec=spec,
                    origin=origin,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
            else:
                row.spec, row.origin, row.updated_at = spec, origin, now
            await s.commit()
        config_cache(self._store).forget(project_id)
        return row, created

    async def get_runbook(self, project_id: str, runbook_id: str) -> RunbookRow:
        async with self._store.session() as s:
            row = await s.get(RunbookRow, (project_id, runbook_id))
        if row is None:
            raise NotFound(f"no runbook {runbook_id!r} in project {project_id!r}")
        return row

    async def list_runbooks(self, project_id: str) -> Sequence[RunbookRow]:
        async with self._store.session() as s:
            query = select(RunbookRow).where(RunbookRow.project_id == project_id).order_by(RunbookRow.id)
            return (await s.scalars(query)).all()

    async def runbooks(self, project_id: str) -> list[Runbook]:
        """The project's runbooks, validated (shared: never changed by their readers)."""
        return await config_cache(self._store).get(
            "runbooks", project_id, lambda: self._read_runbooks(project_id)
        )

    async def _read_runbooks(self, project_id: str) -> list[Runbook]:
        return [
            Runbook(id=row.id, spec=RunbookSpec.model_validate(row.spec))
            for row in await self.list_runbooks(project_id)
        ]

    async def delete_runbook(self, project_id: str, runbook_id: str) -> None:
        async with self._store.session() as s:
            done = await s.execute(
                delete(RunbookRow).where(RunbookRow.project_id == project_id, RunbookRow.id == runbook_id)
            )
            await s.commit()
        config_cache(self._store).forget(project_id)
        if not done.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"no runbook {runbook_id!r} in project {project_id!r}")

    async def audit(
        self, project_id: str, actor: str, kind: str, subject: str, detail: dict[str, Any]
    ) -> None:
        entry = {
            "project_id": project_id,
            "at": utcnow(),
            "actor": actor,
            "kind": kind,
            "subject": subject,
            "detail": detail,
        }
        await self._store.transaction(lambda conn: conn.execute(insert(_AUDIT), entry))

    async def list_audit(
        self,
        project_id: str,
        *,
        kind: str | None = None,
        subject: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> Sequence[AuditEntry]:
        """Newest first; `before_id` pages back through older entries."""
        query = select(AuditEntry).where(AuditEntry.project_id == project_id)
        if kind is not None:
            query = query.where(AuditEntry.kind.startswith(kind))
        if subject is not None:
            query = query.where(AuditEntry.subject == subject)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        async with self._store.session() as s:
            return (await s.scalars(query.order_by(AuditEntry.id.desc()).limit(limit))).all()
