"""Feedback (contract): people's ratings of an analysis, a plan or a workflow, which Vigil learns
from alongside the approvals and rejections at the workflow's gate (weighed four times a rating).

A target is a workflow id, an incident id (its latest workflow), or the id of a workflow's
analysis or plan as its JSON shows them (`analysis_id`, `plan_id`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.learning.store import LearningStore
from vigil.store.models import FeedbackRow
from vigil.store.repo import Store
from vigil.store.workflow_repo import WorkflowRepo
from vigil.workflow.approval_store import aware


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_id: str = Field(
        min_length=1, max_length=200, description="A workflow, an incident, or an analysis or plan id."
    )
    rating: int | None = Field(
        default=None, ge=1, le=5, strict=True, description="1 (wrong, harmful) to 5 (right)."
    )
    helpful: bool | None = Field(default=None, strict=True)
    comment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _judged(self) -> FeedbackIn:
        if self.rating is None and self.helpful is None:
            raise ValueError("give a rating (1-5), helpful (true or false), or both")
        return self


def feedback_out(row: FeedbackRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "target_id": row.target_id,
        "target_kind": row.target_kind,
        "workflow_id": row.workflow_id,
        "rating": row.rating,
        "helpful": row.helpful,
        "comment": row.comment,
        "created_at": aware(row.created_at),
    }


def feedback_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["feedback"])
    learning = LearningStore(store)
    audit = WorkflowRepo(store)

    @router.post("/projects/{project_id}/feedback", status_code=201)
    async def give_feedback(project_id: str, body: FeedbackIn) -> dict[str, Any]:
        """Rate an analysis, a plan or a workflow; later analyses of similar problems learn from it."""
        row = await learning.add_feedback(
            project_id, body.target_id, rating=body.rating, helpful=body.helpful, comment=body.comment
        )
        await audit.audit(
            project_id,
            "admin",
            "feedback",
            body.target_id,
            {
                "id": row.id,
                "target_kind": row.target_kind,
                "workflow_id": row.workflow_id,
                "rating": row.rating,
                "helpful": row.helpful,
            },
        )
        return feedback_out(row)

    @router.get("/projects/{project_id}/feedback")
    async def list_feedback(
        response: Response,
        project_id: str,
        target_id: Annotated[str | None, Query(max_length=200)] = None,
        workflow_id: Annotated[str | None, Query(max_length=100)] = None,
        before_id: Annotated[
            int | None, Query(ge=1, description="Page back: entries older than this id.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Feedback, newest first; a full page says where the next one starts (`X-Next-Before-Id`)."""
        await store.get_project(project_id)
        rows = await learning.list_feedback(
            project_id, target_id=target_id, workflow_id=workflow_id, before_id=before_id, limit=limit
        )
        if len(rows) == limit:
            response.headers["X-Next-Before-Id"] = str(rows[-1].id)
        return [feedback_out(row) for row in rows]

    @router.get("/projects/{project_id}/feedback/stats")
    async def feedback_stats(project_id: str) -> dict[str, Any]:
        """Counts, mean rating, helpful ratio, approvals and rejections, per target kind, and
        the rewards they add up to."""
        await store.get_project(project_id)
        return await learning.stats(project_id)

    return router
