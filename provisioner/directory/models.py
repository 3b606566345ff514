"""The service's own directory of entitlement groups (what policies grant), for the SCIM endpoint.

Policy-granted groups are kept in step by the planner: a group per declared managed group of
each target, with the active identities whose desired access includes it. Groups created through
SCIM (``source="scim"``) are the clients' own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.db import Base, UTCDateTime


class DirectoryGroup(Base):
    __tablename__ = "directory_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(20), default="policy")  # "policy" or "scim"
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    group_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # Entra ID looks groups up by displayName, case-insensitively.
    __table_args__ = (Index("ix_directory_groups_display_name_lower", func.lower(display_name), unique=True),)


class DirectoryGroupMember(Base):
    __tablename__ = "directory_group_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(
        ForeignKey("directory_groups.id", ondelete="CASCADE"), index=True
    )
    identity_id: Mapped[str] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (UniqueConstraint("group_id", "identity_id", name="uq_directory_member"),)
