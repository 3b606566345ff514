"""One row per policy set the service has seen: its fingerprint, the population-wide diff it
caused and what became of it (the change-control issue adds a review step in front of large ones)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.db import Base, JSONType, UTCDateTime


class RolloutStatus:
    APPLIED = "applied"  # everyone affected was re-planned
    AWAITING_APPROVAL = "awaiting_approval"  # held for review (change control)
    APPROVED = "approved"  # an approver said go; the re-plan is under way (applied when done)
    REJECTED = "rejected"  # an approver said no: this set stays unapplied until the policies change
    SUPERSEDED = "superseded"  # a newer policy set arrived before this one was applied


class PolicyRollout(Base):
    __tablename__ = "policy_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    previous_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(30))
    trigger: Mapped[str] = mapped_column(String(100))  # "start", "reload", "cli"
    # Counts: people affected, gains, losses, per target.
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The population-wide diff: per target and group, who gains and who loses (capped).
    diff: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    files: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # file name -> sha256
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_policy_rollouts_fingerprint", "fingerprint"),)
