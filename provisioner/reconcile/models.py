"""What reconciliation keeps between runs: per target, where its change feed stands (a delta
link) and the picture of the target as of that link (:mod:`provisioner.reconcile.changes`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner.db import Base, JSONType, UTCDateTime


class ReconcileCursor(Base):
    """``resource`` "groups": ``seen`` is each managed group's member ids ({group id: [ids]});
    "users": every account's enabled flag ({account id: bool or null})."""

    __tablename__ = "reconcile_cursors"

    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    resource: Mapped[str] = mapped_column(String(20), primary_key=True)
    delta_link: Mapped[str] = mapped_column(Text)
    seen: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
