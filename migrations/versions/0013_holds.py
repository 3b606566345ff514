"""mass-change holds: hold_sets, and the cause and hold set of destructive operations

Revision ID: 0013_holds
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import provisioner.db

revision: str = "0013_holds"
down_revision: str | None = "0012_change_control"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hold_sets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("cause", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("opened_at", provisioner.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("thresholds", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("decided_at", provisioner.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hold_sets_open", "hold_sets", ["target", "cause"], unique=True,
                    postgresql_where=sa.text("status = 'held'"), sqlite_where=sa.text("status = 'held'"))
    op.create_index("ix_hold_sets_status", "hold_sets", ["status", "opened_at"], unique=False)
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cause", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("hold_id", sa.Integer(), nullable=True))
    op.create_index("ix_operations_cause", "operations", ["cause", "target", "created_at"], unique=False,
                    postgresql_where=sa.text("cause IS NOT NULL"), sqlite_where=sa.text("cause IS NOT NULL"))
    op.create_index("ix_operations_hold", "operations", ["hold_id"], unique=False,
                    postgresql_where=sa.text("hold_id IS NOT NULL"), sqlite_where=sa.text("hold_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_operations_hold", table_name="operations")
    op.drop_index("ix_operations_cause", table_name="operations")
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_column("hold_id")
        batch_op.drop_column("cause")
    op.drop_index("ix_hold_sets_status", table_name="hold_sets")
    op.drop_index("ix_hold_sets_open", table_name="hold_sets")
    op.drop_table("hold_sets")
