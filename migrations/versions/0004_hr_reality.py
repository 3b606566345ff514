"""HR reality: lifecycle vs attribute effective times, policy rollouts, revocation incidents

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import provisioner.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
UTC = provisioner.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lifecycle_effective_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("attr_effective", JSON, nullable=True))
    op.create_table(
        "policy_rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("previous_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("trigger", sa.String(length=100), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("diff", JSON, nullable=False),
        sa.Column("files", JSON, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("applied_at", UTC, nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_policy_rollouts_fingerprint", "policy_rollouts", ["fingerprint"])
    op.create_table(
        "revocation_incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identity_id", sa.String(length=36), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("detected_at", UTC, nullable=False),
        sa.Column("detected_by", sa.String(length=100), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("fixed_at", UTC, nullable=True),
        sa.Column("fixed_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"]),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_revocation_incidents_identity_id", "revocation_incidents", ["identity_id"])
    op.create_index("ix_revocation_incidents_plan_id", "revocation_incidents", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_revocation_incidents_plan_id", table_name="revocation_incidents")
    op.drop_index("ix_revocation_incidents_identity_id", table_name="revocation_incidents")
    op.drop_table("revocation_incidents")
    op.drop_index("ix_policy_rollouts_fingerprint", table_name="policy_rollouts")
    op.drop_table("policy_rollouts")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("attr_effective")
        batch_op.drop_column("lifecycle_effective_at")
