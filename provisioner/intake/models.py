"""HR events as received: the durable record the rest of the pipeline works from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner import limits
from provisioner.db import Base, JSONType, UTCDateTime


class EventStatus:
    PENDING = "pending"  # accepted, waiting for its effective time (or for the processor)
    APPLIED = "applied"  # applied to the identity and planned
    SUPERSEDED = "superseded"  # older than what the identity already reflects: never overwrites
    CANCELLED = "cancelled"  # withdrawn by a `cancel` event before it was due
    REJECTED = "rejected"  # the lifecycle transition it asked for is not allowed
    DONE = "done"  # a `cancel` event itself, once it has withdrawn its target
    # Processing it raised (a value the database refuses, a bug): nothing of it was stored; the
    # person's later events wait behind it (except revocations); `provisioner events replay`.
    FAILED = "failed"


class HREvent(Base):
    __tablename__ = "hr_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(limits.EVENT_ID_COLUMN), unique=True)
    source: Mapped[str] = mapped_column(String(limits.SOURCE))
    type: Mapped[str] = mapped_column(String(limits.EVENT_TYPE))
    employee_id: Mapped[str] = mapped_column(String(limits.EMPLOYEE_ID), index=True)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    immediate: Mapped[bool] = mapped_column(Boolean, default=False)
    cancels_event_id: Mapped[str | None] = mapped_column(String(limits.EVENT_ID_COLUMN), nullable=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(limits.EVENT_STATUS), default=EventStatus.PENDING)
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Applied with warnings (``fate.warning``): e.g. a manager the service does not know yet,
    # ``[{"field": "attributes.manager_employee_id", "code": "unknown_manager", "value": "E9", ...}]``.
    warnings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, nullable=True)

    # The claim reads due events in (effective_at, id) order straight off these (claim_due).
    __table_args__ = (Index("ix_hr_events_due", "status", "immediate", "effective_at", "id"),
                      Index("ix_hr_events_terminations", "status", "type", "immediate", "effective_at", "id"))
