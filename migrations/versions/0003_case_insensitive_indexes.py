"""case-insensitive lookup indexes for SCIM (userName, work e-mail, group displayName)

Expression indexes, which autogenerate does not render; they match the Index() declarations on
the models. The text_pattern_ops one (userName sw) is PostgreSQL only.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE UNIQUE INDEX ix_identities_user_name_lower ON identities (lower(user_name))")
    op.execute("CREATE INDEX ix_identities_email_lower ON identities (lower(email))")
    op.execute("CREATE UNIQUE INDEX ix_directory_groups_display_name_lower ON directory_groups (lower(display_name))")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_identities_user_name_lower_pattern ON identities "
                   "(lower(user_name) text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_identities_user_name_lower_pattern")
    op.execute("DROP INDEX ix_directory_groups_display_name_lower")
    op.execute("DROP INDEX ix_identities_email_lower")
    op.execute("DROP INDEX ix_identities_user_name_lower")
