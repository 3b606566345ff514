"""hr_snapshot_files: the snapshot files HR dropped in a folder and what became of each

Revision ID: 0017_hr_snapshot_files
Revises: 0015_reconcile_runs
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import provisioner.db

revision: str = "0017_hr_snapshot_files"
down_revision: str | None = "0015_reconcile_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hr_snapshot_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("picked_at", provisioner.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("counts", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("errors", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("archived_to", sa.Text(), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hr_snapshot_files_applied", "hr_snapshot_files", ["source", "sha256"], unique=True,
                    postgresql_where=sa.text("status = 'applied'"), sqlite_where=sa.text("status = 'applied'"))
    op.create_index("ix_hr_snapshot_files_picked", "hr_snapshot_files", ["source", "picked_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_hr_snapshot_files_picked", table_name="hr_snapshot_files")
    op.drop_index("ix_hr_snapshot_files_applied", table_name="hr_snapshot_files")
    op.drop_table("hr_snapshot_files")
