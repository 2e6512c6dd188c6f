"""indexes for the web UI's newest-first pages: batches by project and time (also the overview's
time series), the audit log by project and id

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_batches_project_created", "batches", ["project_id", "created_at"])
    op.create_index("ix_audit_log_project_id", "audit_log", ["project_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_project_id", table_name="audit_log")
    op.drop_index("ix_batches_project_created", table_name="batches")
