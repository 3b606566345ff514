"""A hold set: one cause's destructive operations on one target, held for an approver.

The operations themselves stay in ``operations`` (status ``held``, ``hold_id`` naming the set),
so a held set survives restarts exactly as the queue does; at most one set per (target, cause)
is open at a time (a partial unique index)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.db import Base, JSONType, UTCDateTime


class Cause:
    """Why destructive work was planned (``Operation.cause``): each has its own thresholds."""

    HR = "hr_termination"  # HR events (terminate, leave, a mover's lost groups)
    SNAPSHOT = "snapshot_import"  # `import --snapshot --terminate-missing`
    POLICY = "policy_rollout"  # a policy rollout applied without review (below the limit)
    REVIEWED_ROLLOUT = "policy_rollout_reviewed"  # a rollout an approver approved: never held again
    RECONCILE = "reconcile_fix"  # `reconcile --fix` re-planning drifted people
    SCIM = "scim"  # the service's own SCIM endpoint re-planning a person

    HOLDABLE = (HR, SNAPSHOT, POLICY, RECONCILE, SCIM)
    ALL = (*HOLDABLE, REVIEWED_ROLLOUT)


class HoldStatus:
    HELD = "held"  # waiting for an approver
    RELEASED = "released"  # the operations went back to the queue
    CANCELLED = "cancelled"  # the operations were withdrawn


class HoldSet(Base):
    __tablename__ = "hold_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(100))
    cause: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default=HoldStatus.HELD)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What was crossed: people with destructive work of this cause in the window, the target's
    # managed population then, and the thresholds (count, share, window minutes) in force.
    people: Mapped[int] = mapped_column(Integer, default=0)
    population: Mapped[int] = mapped_column(Integer, default=0)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_hold_sets_open", "target", "cause", unique=True,
              postgresql_where=text("status = 'held'"), sqlite_where=text("status = 'held'")),
        Index("ix_hold_sets_status", "status", "opened_at"),
    )
