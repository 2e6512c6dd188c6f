"""replays of incidents' archived requests (`vigil replay`), which confirm an incident

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_replays",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("reproduced", sa.Boolean(), nullable=False),
        sa.Column("attempted", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_incident_replays_incident_at", "incident_replays", ["project_id", "incident_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_incident_replays_incident_at", table_name="incident_replays")
    op.drop_table("incident_replays")
