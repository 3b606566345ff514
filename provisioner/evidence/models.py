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
