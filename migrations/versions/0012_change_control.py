"""change control: access requests (approvals of sensitive grants, separation-of-duties flags
and their time-bound exceptions)

Revision ID: 0012_change_control
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from provisioner.db import UTCDateTime

revision: str = "0012_change_control"
down_revision: str | None = "0010_scim_learned_forms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("identity_id", sa.String(length=36), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.create_index("ix_access_requests_identity_id", ["identity_id"], unique=False)
        batch_op.create_index("ix_access_requests_status", ["status", "kind", "created_at"], unique=False)
        batch_op.create_index("ix_access_requests_expiry", ["status", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("access_requests")
