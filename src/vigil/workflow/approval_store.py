"""Approvals in the database.

An approval is answered by one conditional update (pending to approved or rejected): of two
answers, exactly one wins and the other is told so (409), and an answer is stored before the
workflow hears of it, so none is lost whatever the workflow is doing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update

from vigil.errors import Conflict, NotFound
from vigil.learning.store import forget_cases
from vigil.store.models import ApprovalRow, WorkflowRow
from vigil.store.repo import Store, utcnow

R = TypeVar("R", WorkflowRow, ApprovalRow)


def aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every one Vigil stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def once(store: Store, model: type[R], key: str, make: Callable[[], R]) -> R:
    """The row with this key, added by `make` if there is none yet."""
    async with store.session() as s:
        row = await s.get(model, key)
        if row is None:
            row = make()
            s.add(row)
            await s.commit()
        return row


class ApprovalRecords:
    store: Store

    async def request_approval(
        self,
        approval_id: str,
        project_id: str,
        workflow_id: str,
        incident_id: str,
        runbook_id: str,
        expiry_s: float,
        plan: dict[str, Any],
    ) -> ApprovalRow:
        """The approval, made once (a repeated step finds it, answered or not)."""
        now = utcnow()
        return await once(
            self.store,
            ApprovalRow,
            approval_id,
            lambda: ApprovalRow(
                id=approval_id,
                project_id=project_id,
                workflow_id=workflow_id,
                incident_id=incident_id,
                runbook_id=runbook_id,
                status="pending",
                requested_at=now,
                expires_at=now + timedelta(seconds=expiry_s),
                decided_at=None,
                decided_by=None,
                reason=None,
                plan=plan,
            ),
        )

    async def get_approval(self, project_id: str, approval_id: str) -> ApprovalRow:
        async with self.store.session() as s:
            row = await s.get(ApprovalRow, approval_id)
        if row is None or row.project_id != project_id:
            raise NotFound(f"no approval {approval_id!r} in project {project_id!r}")
        return row

    async def list_approvals(
        self, project_id: str | None, *, status: str | None = None, limit: int = 100
    ) -> Sequence[ApprovalRow]:
        query = select(ApprovalRow)
        if project_id is not None:
            query = query.where(ApprovalRow.project_id == project_id)
        if status is not None:
            query = query.where(ApprovalRow.status == status)
        async with self.store.session() as s:
            return (await s.scalars(query.order_by(ApprovalRow.requested_at.desc()).limit(limit))).all()

    async def decide(
        self,
        project_id: str,
        approval_id: str,
        status: str,
        by: str,
        reason: str | None,
        now: datetime | None = None,
    ) -> ApprovalRow:
        """Answer a pending approval (approved, rejected, or expired by the workflow); Conflict
        when it was answered already or has expired."""
        at = now or utcnow()
        current = await self.get_approval(project_id, approval_id)
        if current.status == "pending" and status != "expired" and aware(current.expires_at) <= at:
            status, by, reason = "expired", "vigil", "no answer before it expired"
            expired_instead = True
        else:
            expired_instead = False
        async with self.store.session() as s:
            done = await s.execute(
                update(ApprovalRow)
                .where(ApprovalRow.id == approval_id, ApprovalRow.status == "pending")
                .values(status=status, decided_at=at, decided_by=by, reason=reason)
            )
            await s.commit()
        forget_cases(self.store, project_id)
        row = await self.get_approval(project_id, approval_id)
        if not done.rowcount or expired_instead:  # type: ignore[attr-defined]
            if expired_instead and done.rowcount:  # type: ignore[attr-defined]
                raise Conflict(
                    f"approval {approval_id!r} expired at {aware(row.expires_at).isoformat()}",
                    details={"status": "expired"},
                )
            raise Conflict(
                f"approval {approval_id!r} was already answered: {row.status}"
                + (f" by {row.decided_by}" if row.decided_by else ""),
                details={"status": row.status, "decided_by": row.decided_by},
            )
        return row
