"""identities.preferred_login: HR's login override (the part of a userPrincipalName before '@')

Revision ID: 0014_preferred_login
Revises: 0011_entra_manager
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_preferred_login"
down_revision: str | None = "0011_entra_manager"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preferred_login", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("preferred_login")
