"""Read-backs that prove a leaver lost access in a target (verified, not assumed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.db import Base, JSONType, UTCDateTime


class RevocationCheck(Base):
    __tablename__ = "revocation_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True, index=True)
    target: Mapped[str] = mapped_column(String(100))
    verified: Mapped[bool] = mapped_column(Boolean)
    # What the target answered: account enabled?, managed groups still holding the account.
    readback: Mapped[dict[str, Any]] = mapped_column(JSONType)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RevocationIncident(Base):
    """Access that came back after a leaver's revocation was verified (re-enabled or re-added
    behind the service's back): its own line in the evidence, never merged into the original
    revocation. Detected by reconciliation or a read-back; fixed by the plan it caused."""

    __tablename__ = "revocation_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    target: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))  # account_enabled_elsewhere, member_added_elsewhere...
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detected_by: Mapped[str] = mapped_column(String(100))  # "reconcile", "read-back"
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True, index=True)
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fixed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
