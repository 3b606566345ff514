"""reconcile cursors: where each target's change feed (Graph delta link) stands, and the picture
of the target as of it

Revision ID: 0006_reconcile_cursors
Revises: 0005_e
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from provisioner.db import UTCDateTime

revision: str = "0006_reconcile_cursors"
down_revision: str | None = "0005_e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconcile_cursors",
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("delta_link", sa.Text(), nullable=False),
        sa.Column("seen", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "resource"),
    )


def downgrade() -> None:
    op.drop_table("reconcile_cursors")
