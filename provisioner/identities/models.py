"""One record per person. HR owns the HR attributes; each target owns the ids it assigns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from provisioner import limits
from provisioner.db import Base, JSONType, UTCDateTime


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Where the record comes from: "hr" (HR owns its attributes) or "scim" (created through SCIM).
    source: Mapped[str] = mapped_column(String(20), default="hr")
    employee_id: Mapped[str | None] = mapped_column(String(limits.EMPLOYEE_ID), unique=True, nullable=True)
    # The id a SCIM client gave the person (RFC 7643 §3.1 externalId), owned by that client.
    external_id: Mapped[str | None] = mapped_column(String(limits.EXTERNAL_ID), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(20))
    # HR-owned attributes, as columns so lookups and SCIM filters run on indexes.
    user_name: Mapped[str | None] = mapped_column(String(limits.USER_NAME), unique=True, nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(limits.GIVEN_NAME), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(limits.FAMILY_NAME), nullable=True)
    preferred_name: Mapped[str | None] = mapped_column(String(limits.PREFERRED_NAME), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(limits.DISPLAY_NAME), nullable=True)
    email: Mapped[str | None] = mapped_column(String(limits.EMAIL), nullable=True, index=True)
    department: Mapped[str | None] = mapped_column(String(limits.DEPARTMENT), nullable=True, index=True)
    job_code: Mapped[str | None] = mapped_column(String(limits.JOB_CODE), nullable=True)
    title: Mapped[str | None] = mapped_column(String(limits.TITLE), nullable=True)
    location: Mapped[str | None] = mapped_column(String(limits.LOCATION), nullable=True)
    cost_center: Mapped[str | None] = mapped_column(String(limits.COST_CENTER), nullable=True)
    # Indexed: a manager's new account releases the manager links of their reports.
    manager_employee_id: Mapped[str | None] = mapped_column(String(limits.EMPLOYEE_ID), nullable=True,
                                                           index=True)
    employment_type: Mapped[str | None] = mapped_column(String(limits.EMPLOYMENT_TYPE), nullable=True)
    preferred_login: Mapped[str | None] = mapped_column(String(limits.PREFERRED_LOGIN), nullable=True)
    start_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Effective time of the newest HR event applied: an older event never overwrites a newer one.
    hr_effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Effective time of the newest lifecycle event applied (hire, terminate, leave, return,
    # rehire): lifecycle events are ordered among themselves, never by attribute updates.
    lifecycle_effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Per HR attribute, the effective time of the event that set its current value (ISO 8601):
    # a late, older update never overwrites a newer value, but sets what nothing newer set.
    attr_effective: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_identities_state", "state"),
        # SCIM userName is caseExact=false (RFC 7643 §4.1.1): case-insensitive eq, uniqueness,
        # and sw as an index range on SQLite.
        Index("ix_identities_user_name_lower", func.lower(user_name), unique=True),
        # Entra ID looks people up by emails[type eq "work"].value.
        Index("ix_identities_email_lower", func.lower(email)),
        # userName sw as LIKE 'prefix%' on PostgreSQL whatever the collation (migration 0003).
        Index("ix_identities_user_name_lower_pattern", func.lower(user_name).label("user_name_lower"),
              postgresql_ops={"user_name_lower": "text_pattern_ops"}).ddl_if(dialect="postgresql"),
    )


class LifecycleTransition(Base):
    """Every transition asked of the state machine, accepted or rejected (never silently dropped)."""

    __tablename__ = "lifecycle_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    event_id: Mapped[str | None] = mapped_column(String(limits.EVENT_ID_COLUMN), nullable=True)
    event_type: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class TargetAccount(Base):
    """The account a target assigned to an identity (the target owns this id)."""

    __tablename__ = "target_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    target: Mapped[str] = mapped_column(String(100))
    remote_id: Mapped[str] = mapped_column(String(200))
    login: Mapped[str | None] = mapped_column(String(320), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    linked: Mapped[bool] = mapped_column(Boolean, default=False)  # found existing, not created
    # The HR-derived attributes last pushed to the account: a mover's update sends only changes.
    synced: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("identity_id", "target", name="uq_target_account_identity"),
        UniqueConstraint("target", "remote_id", name="uq_target_account_remote"),
    )


class TargetMembership(Base):
    """A membership the service knows exists in a managed group of a target."""

    __tablename__ = "target_memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    target: Mapped[str] = mapped_column(String(100))
    group_key: Mapped[str] = mapped_column(String(200))  # the group's name as policies grant it
    group_remote_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("identity_id", "target", "group_key", name="uq_target_membership"),
    )


class TargetGroup(Base):
    """A managed group of a target, resolved from its declared name to the target's id."""

    __tablename__ = "target_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(100))
    group_key: Mapped[str] = mapped_column(String(200))
    remote_id: Mapped[str] = mapped_column(String(200))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (UniqueConstraint("target", "group_key", name="uq_target_group"),)
