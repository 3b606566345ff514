"""What reconciliation keeps between runs: per target, where its change feed stands (a delta
link) and the picture of the target as of that link (:mod:`provisioner.reconcile.changes`); and
the last runs with their drift items (:mod:`provisioner.reconcile.runs`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner import limits
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


class ReconcileRun(Base):
    """One reconciliation run, whatever started it (``trigger``: "schedule", "cli",
    "console:<name>", "manual" for a library call), kept for the console's Reconcile page. The
    last ``reconcile_runs_kept`` runs are kept (:func:`provisioner.reconcile.runs.store`)."""

    __tablename__ = "reconcile_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(String(limits.RUN_TRIGGER))
    fix: Mapped[bool] = mapped_column(Boolean)
    # "fix selected": only the targets of the selected items were read, only those lines fixed
    # (not a whole run: the schedule's spacing does not count it, schedule.py).
    selected: Mapped[bool] = mapped_column(Boolean)
    targets: Mapped[list[str]] = mapped_column(JSONType)  # the targets the run read
    drift: Mapped[int] = mapped_column(Integer)  # drift items found (all, even beyond those stored)
    stored: Mapped[int] = mapped_column(Integer)  # drift items kept as rows (reconcile_run_items_max)
    replanned: Mapped[int] = mapped_column(Integer)
    removed: Mapped[int] = mapped_column(Integer)
    incidents: Mapped[int] = mapped_column(Integer)
    read_retries: Mapped[int] = mapped_column(Integer)
    errors: Mapped[list[str]] = mapped_column(JSONType)

    __table_args__ = (Index("ix_reconcile_runs_started", "started_at"),)


class ReconcileDrift(Base):
    """A drift item of a stored run: what was found, what the run did (``action``) and, once
    fixed (by the run itself with ``--fix``, or later by "fix selected"), when, by whom and how."""

    __tablename__ = "reconcile_drift"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconcile_runs.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(100))
    group: Mapped[str | None] = mapped_column("group_key", String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(50))
    employee_id: Mapped[str | None] = mapped_column(String(limits.EMPLOYEE_ID), nullable=True)
    identity_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    remote_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    login: Mapped[str | None] = mapped_column(String(320), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(limits.DISPLAY_NAME), nullable=True)
    change: Mapped[str | None] = mapped_column(String(10), nullable=True)  # policy drift: gain / lose
    terminated: Mapped[bool] = mapped_column(Boolean)
    held: Mapped[bool] = mapped_column(Boolean)
    action: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the run did about it
    fixed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fixed_by: Mapped[str | None] = mapped_column(String(limits.RUN_TRIGGER), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)  # what "fix selected" found or did
