"""Token budgets per project: per UTC day and per incident, checked before a model call and
recorded after it, kept in memory or in the database.

An incident is whatever key the caller passes; until incidents exist, `template_set_key` makes
one from the templates a batch is about. An incident's limit counts its tokens on every day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, CursorResult, Date, Index, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from vigil.errors import VigilError
from vigil.store.db import session_factory
from vigil.store.models import Base

LimitName = Literal["tokens_per_day", "tokens_per_incident"]
INCIDENT_KEY_MAX = 255
_HASHED_KEY_CHARS = 32


def utcnow() -> datetime:
    return datetime.now(UTC)


def template_set_key(template_ids: Iterable[str], prefix: str = "templates") -> str:
    """An incident key for a set of templates, the same whatever their order or repetition."""
    digest = hashlib.sha256("\n".join(sorted(set(template_ids))).encode()).hexdigest()
    return f"{prefix}:{digest[:_HASHED_KEY_CHARS]}"


def _stored_key(incident_key: str) -> str:
    # Keys must fit the column; an over-long one becomes a stable digest of itself.
    if len(incident_key) <= INCIDENT_KEY_MAX:
        return incident_key
    return "sha256:" + hashlib.sha256(incident_key.encode()).hexdigest()


class BudgetLimits(BaseModel):
    """None means no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_per_day: int | None = Field(default=None, ge=0)
    tokens_per_incident: int | None = Field(default=None, ge=0)


class BudgetExhausted(VigilError):
    """A model call would go over a token limit, so it was not made."""

    code = "token_budget_exhausted"
    status = 429

    def __init__(
        self,
        *,
        project_id: str,
        incident_key: str,
        limit_name: LimitName,
        used: int,
        limit: int,
        requested: int,
        resets_at: datetime | None,
    ) -> None:
        when = f"; resets at {resets_at.isoformat()}" if resets_at else ""
        super().__init__(
            f"token budget {limit_name} of project {project_id} is spent: {used} of {limit} used, "
            f"{requested} more needed{when}",
            details={
                "project_id": project_id,
                "incident_key": incident_key,
                "limit_name": limit_name,
                "used": used,
                "limit": limit,
                "requested": requested,
                "resets_at": resets_at.isoformat() if resets_at else None,
            },
        )
        self.project_id = project_id
        self.incident_key = incident_key
        self.limit_name: LimitName = limit_name
        self.used = used
        self.limit = limit
        self.requested = requested
        self.resets_at = resets_at


class IncidentUsage(BaseModel):
    tokens_today: int
    tokens_total: int
    remaining: int | None


class BudgetUsage(BaseModel):
    project_id: str
    day: date
    resets_at: datetime
    tokens_per_day: int | None
    tokens_today: int
    remaining_today: int | None
    tokens_per_incident: int | None
    incidents: dict[str, IncidentUsage] = Field(description="Incidents that spent tokens today.")


class UsageStore(Protocol):
    async def add(self, project_id: str, day: date, incident_key: str, tokens: int) -> None: ...

    async def day_total(self, project_id: str, day: date) -> int: ...

    async def day_by_incident(self, project_id: str, day: date) -> dict[str, int]: ...

    async def incident_totals(self, project_id: str, incident_keys: Collection[str]) -> dict[str, int]: ...


class MemoryUsageStore:
    """For one process and for tests; forgets everything on restart."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, date, str], int] = {}

    async def add(self, project_id: str, day: date, incident_key: str, tokens: int) -> None:
        key = (project_id, day, incident_key)
        self._tokens[key] = self._tokens.get(key, 0) + tokens

    async def day_total(self, project_id: str, day: date) -> int:
        return sum(n for (p, d, _), n in self._tokens.items() if p == project_id and d == day)

    async def day_by_incident(self, project_id: str, day: date) -> dict[str, int]:
        return {i: n for (p, d, i), n in self._tokens.items() if p == project_id and d == day}

    async def incident_totals(self, project_id: str, incident_keys: Collection[str]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (p, _, i), n in self._tokens.items():
            if p == project_id and i in incident_keys:
                totals[i] = totals.get(i, 0) + n
        return totals


class TokenUsage(Base):
    """Tokens a project spent on one incident on one UTC day."""

    __tablename__ = "token_usage"
    __table_args__ = (Index("ix_token_usage_project_incident", "project_id", "incident_key"),)

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    incident_key: Mapped[str] = mapped_column(String(INCIDENT_KEY_MAX), primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger)


class SqlUsageStore:
    """Shared by every process on the database, so limits hold across workers and restarts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def add(self, project_id: str, day: date, incident_key: str, tokens: int) -> None:
        row = (
            (TokenUsage.project_id == project_id)
            & (TokenUsage.day == day)
            & (TokenUsage.incident_key == incident_key)
        )
        async with self._sessions() as s:
            # Update-then-insert is portable SQL; if another writer inserts the row between the two,
            # the insert fails and the second round's update finds it.
            for _ in range(2):
                result = cast(
                    CursorResult[Any],
                    await s.execute(update(TokenUsage).where(row).values(tokens=TokenUsage.tokens + tokens)),
                )
                if result.rowcount:
                    await s.commit()
                    return
                s.add(TokenUsage(project_id=project_id, day=day, incident_key=incident_key, tokens=tokens))
                try:
                    await s.commit()
                    return
                except IntegrityError:
                    await s.rollback()
        raise RuntimeError("could not record token usage after a concurrent insert")

    async def day_total(self, project_id: str, day: date) -> int:
        query = select(func.coalesce(func.sum(TokenUsage.tokens), 0)).where(
            TokenUsage.project_id == project_id, TokenUsage.day == day
        )
        async with self._sessions() as s:
            return int((await s.execute(query)).scalar_one())

    async def day_by_incident(self, project_id: str, day: date) -> dict[str, int]:
        query = select(TokenUsage.incident_key, TokenUsage.tokens).where(
            TokenUsage.project_id == project_id, TokenUsage.day == day
        )
        async with self._sessions() as s:
            return {key: int(tokens) for key, tokens in (await s.execute(query)).all()}

    async def incident_totals(self, project_id: str, incident_keys: Collection[str]) -> dict[str, int]:
        if not incident_keys:
            return {}
        query = (
            select(TokenUsage.incident_key, func.sum(TokenUsage.tokens))
            .where(TokenUsage.project_id == project_id, TokenUsage.incident_key.in_(list(incident_keys)))
            .group_by(TokenUsage.incident_key)
        )
        async with self._sessions() as s:
            return {key: int(tokens) for key, tokens in (await s.execute(query)).all()}


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)


class TokenBudget:
    """Limits per project (or a default for all). `check` before a call refuses one that would go
    over; `record` after it adds what the call really spent.

    Calls running at once for one project each pass `check` on the usage before any of them
    records, so together they may go over by what those calls spend.
    """

    def __init__(
        self,
        store: UsageStore,
        default: BudgetLimits | None = None,
        *,
        limits: Mapping[str, BudgetLimits] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._default = default or BudgetLimits()
        self._limits = dict(limits or {})
        self._clock = clock

    def limits_for(self, project_id: str) -> BudgetLimits:
        return self._limits.get(project_id, self._default)

    def set_limits(self, project_id: str, limits: BudgetLimits) -> None:
        self._limits[project_id] = limits

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    async def check(self, project_id: str, incident_key: str, estimated_tokens: int) -> None:
        """Raise `BudgetExhausted` if spending `estimated_tokens` more would break a limit."""
        limits = self.limits_for(project_id)
        key = _stored_key(incident_key)
        now = self._now()

        def exhausted(name: LimitName, used: int, limit: int, resets_at: datetime | None) -> BudgetExhausted:
            return BudgetExhausted(
                project_id=project_id,
                incident_key=incident_key,
                limit_name=name,
                used=used,
                limit=limit,
                requested=estimated_tokens,
                resets_at=resets_at,
            )

        if limits.tokens_per_day is not None:
            used = await self._store.day_total(project_id, now.date())
            if used + estimated_tokens > limits.tokens_per_day:
                raise exhausted("tokens_per_day", used, limits.tokens_per_day, _next_midnight(now))
        if limits.tokens_per_incident is not None:
            used = (await self._store.incident_totals(project_id, [key])).get(key, 0)
            if used + estimated_tokens > limits.tokens_per_incident:
                raise exhausted("tokens_per_incident", used, limits.tokens_per_incident, None)

    async def record(self, project_id: str, incident_key: str, tokens: int) -> None:
        if tokens > 0:
            await self._store.add(project_id, self._now().date(), _stored_key(incident_key), tokens)

    async def usage(self, project_id: str) -> dict[str, Any]:
        """Limits, what today and each of today's incidents spent, and what is left (JSON-ready)."""
        limits = self.limits_for(project_id)
        now = self._now()
        today = await self._store.day_by_incident(project_id, now.date())
        totals = await self._store.incident_totals(project_id, list(today))
        spent_today = sum(today.values())
        per_incident = limits.tokens_per_incident
        report = BudgetUsage(
            project_id=project_id,
            day=now.date(),
            resets_at=_next_midnight(now),
            tokens_per_day=limits.tokens_per_day,
            tokens_today=spent_today,
            remaining_today=None
            if limits.tokens_per_day is None
            else max(0, limits.tokens_per_day - spent_today),
            tokens_per_incident=per_incident,
            incidents={
                key: IncidentUsage(
                    tokens_today=tokens,
                    tokens_total=totals.get(key, tokens),
                    remaining=None
                    if per_incident is None
                    else max(0, per_incident - totals.get(key, tokens)),
                )
                for key, tokens in today.items()
            },
        )
        return report.model_dump(mode="json")
