"""Past cases and feedback in the database, always within one project.

A case is written when a workflow analyses its incident; its outcome and reward are read from the
workflow's status, its approval and the feedback given since, so nothing has to be kept in step.

Every alert's workflow compares its problem with the project's cases, so they are kept in the
process for a moment (`config_cache.TTL_S`), as projects' policies are: a case recorded here joins them at
once, and feedback, an approval's answer or a workflow's end recorded here makes the next read go
to the database; another process's within the TTL."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from vigil.errors import NotFound
from vigil.learning.corpus import Corpus
from vigil.learning.features import Features
from vigil.learning.reward import DECISION_REWARD, OUTCOME_REWARD, feedback_reward, outcome
from vigil.store.models import ApprovalRow, CaseRow, FeedbackRow, IncidentRow, WorkflowRow
from vigil.store.repo import Store, utcnow
from vigil.workflow.config_cache import config_cache

ANALYSIS_SUFFIX = ":analysis"
PLAN_SUFFIX = ":plan"
MAX_CASES = 1000
"""The most recent cases of a project that are compared with a new problem."""
CASES = "learning-cases"
"""The kind of the project's cases in `config_cache`."""
_CASES = cast(Table, CaseRow.__table__)


def forget_cases(store: Store, project_id: str) -> None:
    """After feedback, an approval's answer or a workflow's end: outcomes and rewards changed."""
    config_cache(store).forget(project_id, CASES)


def analysis_id(workflow_id: str) -> str:
    return workflow_id + ANALYSIS_SUFFIX


def plan_id(workflow_id: str) -> str:
    return workflow_id + PLAN_SUFFIX


def feedback_targets(row: WorkflowRow) -> dict[str, str | None]:
    """The ids feedback can name for this workflow: itself, its analysis and its plan."""
    return {
        "analysis_id": analysis_id(row.id) if row.body.get("analysis") else None,
        "plan_id": plan_id(row.id) if row.body.get("runbook") else None,
    }


@dataclass
class Case:
    workflow_id: str
    incident_id: str
    created_at: datetime
    features: Features
    runbook_id: str | None
    hypothesis: str
    decision: str | None = None
    outcome: str = "open"
    reward: float = 0.0
    """Everything people said of it: its gate's decision, its outcome, all its feedback."""
    plan_reward: float = 0.0
    """What its runbook earned: the decision, the outcome, feedback on its plan or on it whole."""
    analysis_reward: float = 0.0
    """What its hypothesis earned: feedback on its analysis or on it whole."""
    comments: list[str] = field(default_factory=list)


@dataclass
class NewCase:
    """A workflow's case, to be written in the transaction that records its analysis
    (`write_case`), then `joined` to the project's cases held here."""

    store: Store
    project_id: str
    workflow_id: str
    incident_id: str
    features: Features
    runbook_id: str | None
    hypothesis: str

    def __post_init__(self) -> None:
        self.hypothesis = self.hypothesis[:2000]

    def values(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "features": self.features.to_json(),
            "runbook_id": self.runbook_id,
            "hypothesis": self.hypothesis,
        }

    def joined(self, created_at: datetime) -> None:
        """Once written: the project's cases held in the process include it at once."""
        held: Corpus[Case] | None = config_cache(self.store).peek(CASES, self.project_id)
        if held is not None:
            case = Case(
                self.workflow_id,
                self.incident_id,
                created_at,
                self.features,
                self.runbook_id,
                self.hypothesis,
            )
            held.add(case.workflow_id, case, case.features)
            held.trim(MAX_CASES)


class LearningStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def record_case(
        self,
        project_id: str,
        workflow_id: str,
        incident_id: str,
        features: Features,
        runbook_id: str | None,
        hypothesis: str,
    ) -> None:
        """The case of a workflow, as its analysis left it (a repeated step rewrites it alike)."""
        case = NewCase(self.store, project_id, workflow_id, incident_id, features, runbook_id, hypothesis)
        created_at = await self.store.transaction(partial(write_case, project_id, workflow_id, case.values()))
        case.joined(created_at)

    async def cases(self, project_id: str, *, leave_out: str | None = None) -> list[Case]:
        """The project's most recent cases with their outcome and reward, oldest first (shared:
        not to be changed)."""
        return [case for case in (await self.held(project_id)).items() if case.workflow_id != leave_out]

    async def held(self, project_id: str) -> Corpus[Case]:
        """The same cases by workflow id, ready to be compared with a problem (shared: not to be
        changed)."""
        held: Corpus[Case] = await config_cache(self.store).get(
            CASES, project_id, partial(self._read_cases, project_id)
        )
        return held

    async def _read_cases(self, project_id: str) -> Corpus[Case]:
        columns = (
            CaseRow.workflow_id,
            CaseRow.incident_id,
            CaseRow.created_at,
            CaseRow.features,
            CaseRow.runbook_id,
            CaseRow.hypothesis,
        )
        query = select(*columns).where(CaseRow.project_id == project_id)
        async with self.store.session() as s:
            rows = (await s.execute(query.order_by(CaseRow.created_at.desc()).limit(MAX_CASES))).all()
            ids = [row[0] for row in rows]
            statuses = dict(
                (
                    await s.execute(select(WorkflowRow.id, WorkflowRow.status).where(WorkflowRow.id.in_(ids)))
                ).all()
            )
            decisions = dict(
                (
                    await s.execute(
                        select(ApprovalRow.workflow_id, ApprovalRow.status).where(
                            ApprovalRow.workflow_id.in_(ids), ApprovalRow.project_id == project_id
                        )
                    )
                ).all()
            )
            feedback = (
                await s.execute(
                    select(
                        FeedbackRow.workflow_id,
                        FeedbackRow.target_kind,
                        FeedbackRow.rating,
                        FeedbackRow.helpful,
                        FeedbackRow.comment,
                    )
                    .where(FeedbackRow.workflow_id.in_(ids), FeedbackRow.project_id == project_id)
                    .order_by(FeedbackRow.id)
                )
            ).all()
        cases = {
            workflow_id: Case(
                workflow_id=workflow_id,
                incident_id=incident_id,
                created_at=created_at,
                features=Features.from_json(features),
                runbook_id=runbook_id,
                hypothesis=hypothesis,
            )
            for workflow_id, incident_id, created_at, features, runbook_id, hypothesis in reversed(rows)
        }
        for case in cases.values():
            decision = decisions.get(case.workflow_id)
            status = statuses.get(case.workflow_id)
            case.decision = decision
            case.outcome = outcome(status, decision)
            case.reward = DECISION_REWARD.get(decision or "", 0.0) + OUTCOME_REWARD.get(status or "", 0.0)
            case.plan_reward = case.reward
        for workflow_id, kind, rating, helpful, comment in feedback:
            case = cases[workflow_id]
            worth = feedback_reward(rating, helpful)
            case.reward += worth
            if kind != "analysis":
                case.plan_reward += worth
            if kind != "plan":
                case.analysis_reward += worth
            if comment:
                case.comments.append(comment)
        held: Corpus[Case] = Corpus()
        for case in cases.values():
            held.add(case.workflow_id, case, case.features)
        return held

    async def resolve_target(self, project_id: str, target_id: str) -> tuple[str, str]:
        """What feedback names: (analysis, plan or workflow; the workflow's id). NotFound for an
        unknown id or another project's."""
        for suffix, kind in ((ANALYSIS_SUFFIX, "analysis"), (PLAN_SUFFIX, "plan")):
            if target_id.endswith(suffix):
                workflow_id = target_id.removesuffix(suffix)
                row = await self._workflow(project_id, workflow_id)
                if row is None:
                    raise NotFound(
                        f"no workflow {workflow_id!r} in project {project_id!r}, so no {kind} {target_id!r}"
                    )
                if kind == "analysis" and not row.body.get("analysis"):
                    raise NotFound(f"workflow {workflow_id!r} has no analysis (yet)")
                if kind == "plan" and not row.body.get("runbook"):
                    raise NotFound(f"workflow {workflow_id!r} has no plan: no runbook was chosen")
                return kind, workflow_id
        if await self._workflow(project_id, target_id) is not None:
            return "workflow", target_id
        async with self.store.session() as s:
            incident = await s.get(IncidentRow, target_id)
            if incident is not None and incident.project_id == project_id:
                latest = await s.scalar(
                    select(WorkflowRow.id)
                    .where(WorkflowRow.incident_id == target_id, WorkflowRow.project_id == project_id)
                    .order_by(WorkflowRow.started_at.desc())
                    .limit(1)
                )
                if latest is None:
                    raise NotFound(f"incident {target_id!r} has no workflow to give feedback on")
                return "workflow", latest
        raise NotFound(
            f"no workflow, incident, analysis or plan {target_id!r} in project {project_id!r}",
            details={"target_id": target_id},
        )

    async def _workflow(self, project_id: str, workflow_id: str) -> WorkflowRow | None:
        async with self.store.session() as s:
            row = await s.get(WorkflowRow, workflow_id)
        return row if row is not None and row.project_id == project_id else None

    async def add_feedback(
        self,
        project_id: str,
        target_id: str,
        *,
        rating: int | None,
        helpful: bool | None,
        comment: str | None,
    ) -> FeedbackRow:
        await self.store.get_project(project_id)
        kind, workflow_id = await self.resolve_target(project_id, target_id)
        row = FeedbackRow(
            project_id=project_id,
            target_id=target_id,
            target_kind=kind,
            workflow_id=workflow_id,
            rating=rating,
            helpful=helpful,
            comment=comment,
            created_at=utcnow(),
        )
        async with self.store.session() as s:
            s.add(row)
            await s.commit()
            await s.refresh(row)
        forget_cases(self.store, project_id)
        return row

    async def list_feedback(
        self,
        project_id: str,
        *,
        target_id: str | None = None,
        workflow_id: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> Sequence[FeedbackRow]:
        """Newest first; `before_id` pages back through older entries."""
        query = select(FeedbackRow).where(FeedbackRow.project_id == project_id)
        if target_id is not None:
            query = query.where(FeedbackRow.target_id == target_id)
        if workflow_id is not None:
            query = query.where(FeedbackRow.workflow_id == workflow_id)
        if before_id is not None:
            query = query.where(FeedbackRow.id < before_id)
        async with self.store.session() as s:
            return (await s.scalars(query.order_by(FeedbackRow.id.desc()).limit(limit))).all()

    async def stats(self, project_id: str) -> dict[str, Any]:
        """Counts, mean rating, helpful ratio, approvals and rejections, by target kind, and the
        rewards they add up to."""
        async with self.store.session() as s:
            entries = (await s.scalars(select(FeedbackRow).where(FeedbackRow.project_id == project_id))).all()
            decisions = (
                await s.scalars(select(ApprovalRow.status).where(ApprovalRow.project_id == project_id))
            ).all()
            statuses = (
                await s.scalars(select(WorkflowRow.status).where(WorkflowRow.project_id == project_id))
            ).all()
        by_kind = {kind: _summary([e for e in entries if e.target_kind == kind]) for kind in KINDS}
        approvals, rejections = decisions.count("approved"), decisions.count("rejected")
        rewards = {
            "feedback": round(sum(feedback_reward(e.rating, e.helpful) for e in entries), 4),
            "approvals": approvals * DECISION_REWARD["approved"],
            "rejections": rejections * DECISION_REWARD["rejected"],
            "outcomes": sum(OUTCOME_REWARD.get(status, 0.0) for status in statuses),
        }
        return {
            **_summary(entries),
            "approvals": approvals,
            "rejections": rejections,
            "by_target_kind": by_kind,
            "reward": {**rewards, "total": round(sum(rewards.values()), 4)},
            "weights": {"rating": 1.0, "helpful": 1.0, "approval": DECISION_REWARD["approved"]},
        }


KINDS = ("analysis", "plan", "workflow")


def write_case(project_id: str, workflow_id: str, values: dict[str, Any], conn: Connection) -> datetime:
    """The case's row, made or rewritten (one statement); when it was made."""
    made = {"workflow_id": workflow_id, "project_id": project_id, "created_at": utcnow(), **values}
    statement = _case_upsert(conn.dialect.name, tuple(values))
    found: datetime = conn.execute(statement, {f"case_{k}": v for k, v in made.items()}).scalar_one()
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


@functools.cache
def _case_upsert(dialect: str, rewritten: tuple[str, ...]) -> Any:
    """Made once per database kind (SQLAlchemy then reuses its compiled form): every workflow's
    plan writes its case."""
    dialect_insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    columns = ("workflow_id", "project_id", "created_at", *rewritten)
    statement = dialect_insert(_CASES).values({c: bindparam(f"case_{c}") for c in columns})
    return statement.on_conflict_do_update(
        index_elements=["workflow_id"], set_={c: statement.excluded[c] for c in rewritten}
    ).returning(_CASES.c.created_at)


def _summary(entries: Sequence[FeedbackRow]) -> dict[str, Any]:
    ratings = [e.rating for e in entries if e.rating is not None]
    judged = [e.helpful for e in entries if e.helpful is not None]
    return {
        "count": len(entries),
        "ratings": len(ratings),
        "mean_rating": round(sum(ratings) / len(ratings), 4) if ratings else None,
        "helpful": judged.count(True),
        "not_helpful": judged.count(False),
        "helpful_ratio": round(judged.count(True) / len(judged), 4) if judged else None,
        "reward": round(sum(feedback_reward(e.rating, e.helpful) for e in entries), 4),
    }
