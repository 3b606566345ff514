"""The durable operation queue: every change to a target is one row here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.db import Base, JSONType, UTCDateTime


class OpStatus:
    WAITING = "waiting"  # depends on another operation that has not succeeded yet
    PENDING = "pending"  # ready to be claimed at next_attempt_at
    RUNNING = "running"  # claimed by a worker until lease_until
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # permanent failure or attempts exhausted: needs a person (replay)
    CANCELLED = "cancelled"  # superseded by a newer plan before it ran
    # A mass change held for an approver (provisioner/change_control/holds): never claimed;
    # released back to pending/waiting or cancelled as a set (``hold_id``).
    HELD = "held"


class Priority:
    """Lower runs first. Leaver work runs before everything else."""

    IMMEDIATE_TERMINATE = 0
    LEAVER = 10
    VERIFY = 20
    NORMAL = 100

    @staticmethod
    def is_revocation(priority: int) -> bool:
        """Revocation work (a leaver's or a leave's operations, read-backs, remediation): claimed
        in rounds of its own, by a reserved worker loop too, and run in the targets' revocation
        lane (``provisioner.targets.lanes``)."""
        return priority < Priority.NORMAL


class Operation(Base):
    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True, index=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    target: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    group_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=Priority.NORMAL)
    status: Mapped[str] = mapped_column(String(20), default=OpStatus.PENDING)
    depends_on_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Destructive work (and its companions) only: why it was planned, and the hold set it is in.
    cause: Mapped[str | None] = mapped_column(String(30), nullable=True)
    hold_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_operations_claim", "status", "priority", "next_attempt_at"),
        Index("ix_operations_depends", "depends_on_id"),
        # Group additions claimed group by group (queue.repository.claim_additions).
        Index("ix_operations_additions", "kind", "status", "target", "group_key", "next_attempt_at"),
        # Mass-change holds: a cause's destructive work on a target in the sliding window, and
        # a hold set's operations. Partial: the bulk of the queue (grants, updates) is not in them.
        Index("ix_operations_cause", "cause", "target", "created_at",
              postgresql_where=text("cause IS NOT NULL"), sqlite_where=text("cause IS NOT NULL")),
        Index("ix_operations_hold", "hold_id",
              postgresql_where=text("hold_id IS NOT NULL"), sqlite_where=text("hold_id IS NOT NULL")),
    )
