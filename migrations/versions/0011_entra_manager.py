"""hr_events.warnings: an event applied with warnings (a manager the service does not know yet);
an index on identities.manager_employee_id (a manager's account releases their reports' links).

Revision ID: 0011_entra_manager
Revises: 0013_holds
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_entra_manager"
down_revision: str | None = "0013_holds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hr_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                                      nullable=True))
    op.create_index("ix_identities_manager_employee_id", "identities", ["manager_employee_id"])


def downgrade() -> None:
    op.drop_index("ix_identities_manager_employee_id", table_name="identities")
    with op.batch_alter_table("hr_events", schema=None) as batch_op:
        batch_op.drop_column("warnings")
