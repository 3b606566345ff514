"""event claim indexes: due events in (effective_at, id) order, due terminations on their own

``claim_due`` reads candidates page by page in index order instead of sorting every pending
event: ``ix_hr_events_due`` gains ``id`` (the tie-break of the order; SQLite had it implicitly,
PostgreSQL sorted), and ``ix_hr_events_terminations`` finds due terminations without reading
the joiners queued ahead of them.

Revision ID: 0009
Revises: 0005_e
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008_claim_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hr_events", schema=None) as batch_op:
        batch_op.drop_index("ix_hr_events_due")
        batch_op.create_index("ix_hr_events_due", ["status", "immediate", "effective_at", "id"], unique=False)
        batch_op.create_index("ix_hr_events_terminations", ["status", "type", "immediate", "effective_at", "id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hr_events", schema=None) as batch_op:
        batch_op.drop_index("ix_hr_events_terminations")
        batch_op.drop_index("ix_hr_events_due")
        batch_op.create_index("ix_hr_events_due", ["status", "immediate", "effective_at"], unique=False)
