"""token usage of the LLM engine, per project, day and incident

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_usage",
        sa.Column("project_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("incident_key", sa.String(255), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "day", "incident_key"),
    )
    op.create_index("ix_token_usage_project_incident", "token_usage", ["project_id", "incident_key"])


def downgrade() -> None:
    op.drop_index("ix_token_usage_project_incident", table_name="token_usage")
    op.drop_table("token_usage")
