"""Stored plans: what the service decided to do for one identity, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from provisioner import limits
from provisioner.db import Base, JSONType, UTCDateTime


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(limits.PLAN_TRIGGER))  # "event:<id>", "reconcile", "manual"
    kind: Mapped[str] = mapped_column(String(20))  # joiner, mover, leaver, rehire, leave, noop...
    # The diff IT reviews: per target, what is desired, known, to add and to remove.
    diff: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
