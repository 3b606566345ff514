"""reconcile_runs and reconcile_drift: each reconciliation run and its drift items (console)

Revision ID: 0015_reconcile_runs
Revises: 0014_preferred_login
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import provisioner.db

revision: str = "0015_reconcile_runs"
down_revision: str | None = "0014_preferred_login"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", provisioner.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", provisioner.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("fix", sa.Boolean(), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("targets", JSON, nullable=False),
        sa.Column("drift", sa.Integer(), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("replanned", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("incidents", sa.Integer(), nullable=False),
        sa.Column("read_retries", sa.Integer(), nullable=False),
        sa.Column("errors", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reconcile_runs_started", "reconcile_runs", ["started_at"], unique=False)
    op.create_table(
        "reconcile_drift",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("employee_id", sa.String(length=100), nullable=True),
        sa.Column("identity_id", sa.String(length=36), nullable=True),
        sa.Column("remote_id", sa.String(length=200), nullable=True),
        sa.Column("login", sa.String(length=320), nullable=True),
        sa.Column("display_name", sa.String(length=400), nullable=True),
        sa.Column("change", sa.String(length=10), nullable=True),
        sa.Column("terminated", sa.Boolean(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("fixed_at", provisioner.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fixed_by", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["reconcile_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reconcile_drift_run_id", "reconcile_drift", ["run_id"], unique=False)
    op.create_index("ix_reconcile_drift_identity_id", "reconcile_drift", ["identity_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reconcile_drift_identity_id", table_name="reconcile_drift")
    op.drop_index("ix_reconcile_drift_run_id", table_name="reconcile_drift")
    op.drop_table("reconcile_drift")
    op.drop_index("ix_reconcile_runs_started", table_name="reconcile_runs")
    op.drop_table("reconcile_runs")
