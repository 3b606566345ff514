"""index for claiming group additions group by group (queue.repository.claim_additions)

Revision ID: 0008_claim_indexes
Revises: 0005_e
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_claim_indexes"
down_revision: str | None = "0006_reconcile_cursors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_operations_additions", "operations",
                    ["kind", "status", "target", "group_key", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_operations_additions", table_name="operations")
