"""scim learned forms: per target and operation, the write forms the app refused or answered
without effect (the connector's fallback ladders start from these after a restart)

Revision ID: 0010_scim_learned_forms
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from provisioner.db import UTCDateTime

revision: str = "0010_scim_learned_forms"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scim_learned_forms",
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("form", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("learned_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "operation", "form"),
    )


def downgrade() -> None:
    op.drop_table("scim_learned_forms")
