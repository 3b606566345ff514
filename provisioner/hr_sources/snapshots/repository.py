"""Queries for snapshot files (``hr_snapshot_files``), and what ``reassert`` reads of the people."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner.hr_sources.snapshots.models import FileStatus, SnapshotFile
from provisioner.identities.models import Identity
from provisioner.intake.models import HREvent


def applied(session: Session, source: str, sha256: str) -> SnapshotFile | None:
    """The file of this source that applied this content, if one did."""
    return session.scalar(select(SnapshotFile).where(SnapshotFile.source == source, SnapshotFile.sha256 == sha256,
                                                     SnapshotFile.status == FileStatus.APPLIED))


def add(session: Session, row: SnapshotFile) -> SnapshotFile:
    """Insert now (flush): an ``applied`` row taken by another transaction raises IntegrityError."""
    session.add(row)
    session.flush()
    return row


def get(session: Session, row_id: int) -> SnapshotFile | None:
    return session.get(SnapshotFile, row_id)


def recent(session: Session, source: str | None = None, limit: int = 50) -> Sequence[SnapshotFile]:
    """The newest files taken (of one source, or of all), newest first."""
    stmt = select(SnapshotFile).order_by(SnapshotFile.picked_at.desc(), SnapshotFile.id.desc()).limit(limit)
    if source is not None:
        stmt = stmt.where(SnapshotFile.source == source)
    return session.scalars(stmt).all()


def last_event_ids(session: Session, employee_ids: Sequence[str]) -> dict[str, str]:
    """Each person's last received HR event id (``hr_events``, by insertion order)."""
    ids, out = sorted(set(employee_ids)), {}
    for start in range(0, len(ids), 500):
        newest = (select(HREvent.employee_id, func.max(HREvent.id).label("id"))
                  .where(HREvent.employee_id.in_(ids[start:start + 500])).group_by(HREvent.employee_id).subquery())
        out.update(session.execute(select(HREvent.employee_id, HREvent.event_id)
                                   .join(newest, HREvent.id == newest.c.id)).tuples().all())
    return out


def states(session: Session, employee_ids: Sequence[str]) -> dict[str, str]:
    ids, out = sorted(set(employee_ids)), {}
    for start in range(0, len(ids), 500):
        out.update(session.execute(select(Identity.employee_id, Identity.state)
                                   .where(Identity.employee_id.in_(ids[start:start + 500]))).tuples().all())
    return out
