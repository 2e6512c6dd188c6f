"""feedback on analyses, plans and workflows, and the past cases Vigil learns from

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learning_cases",
        sa.Column("workflow_id", sa.String(length=100), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("runbook_id", sa.String(length=100), nullable=True),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id"),
    )
    op.create_index("ix_learning_cases_project_created", "learning_cases", ["project_id", "created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("target_id", sa.String(length=200), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("workflow_id", sa.String(length=100), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feedback_project_id", "feedback", ["project_id", "id"])
    op.create_index("ix_feedback_workflow_id", "feedback", ["workflow_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_workflow_id", table_name="feedback")
    op.drop_index("ix_feedback_project_id", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_learning_cases_project_created", table_name="learning_cases")
    op.drop_table("learning_cases")
