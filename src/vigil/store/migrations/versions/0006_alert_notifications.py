"""alert webhooks (Alertmanager, Grafana) as they came, beside the incidents they touched

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("incident_ids", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_alert_notifications_project_received", "alert_notifications", ["project_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_alert_notifications_project_received", table_name="alert_notifications")
    op.drop_table("alert_notifications")
