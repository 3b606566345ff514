"""Queries for snapshot files (``hr_snapshot_files``), and what ``reassert`` reads of the people."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner.hr_sources.snapshots.models import FileStatus, SnapshotFile
from provisioner.identities.lifecycle import EventType
from provisioner.identities.models import Identity
from provisioner.intake.models import HREvent

_APPLIED = (FileStatus.APPLIED, FileStatus.REAPPLIED)


def latest_applied(session: Session, source: str, *, lock: bool = False) -> SnapshotFile | None:
    """The file of this source applied last (applied or applied again). ``lock``: its row locked
    (PostgreSQL), then read again, so that the takes claiming a file after it go one at a time."""
    stmt = (select(SnapshotFile).where(SnapshotFile.source == source, SnapshotFile.status.in_(_APPLIED))
            .order_by(SnapshotFile.picked_at.desc(), SnapshotFile.id.desc()).limit(1))
    if not lock:
        return session.scalar(stmt)
    locked = session.scalar(stmt.with_for_update())
    return session.scalar(stmt.execution_options(populate_existing=True)) if locked is not None else None


def applications(session: Session, source: str, sha256: str) -> list[SnapshotFile]:
    """Every application of this content by this source (applied, then applied again), oldest first."""
    return list(session.scalars(select(SnapshotFile).where(SnapshotFile.source == source, SnapshotFile.sha256 == sha256,
                                                      SnapshotFile.status.in_(_APPLIED))
                                .order_by(SnapshotFile.picked_at, SnapshotFile.id)))


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


def terminated_by(session: Session, employee_ids: Sequence[str], source: str, prefix: str) -> set[str]:
    """The people whose last terminate event came from ``source`` with an event id starting with ``prefix``."""
    ids, out = sorted(set(employee_ids)), set()
    for start in range(0, len(ids), 500):
        newest = (select(HREvent.employee_id, func.max(HREvent.id).label("id"))
                  .where(HREvent.employee_id.in_(ids[start:start + 500]), HREvent.type == EventType.TERMINATE.value)
                  .group_by(HREvent.employee_id).subquery())
        rows = session.execute(select(HREvent.employee_id, HREvent.event_id, HREvent.source)
                               .join(newest, HREvent.id == newest.c.id)).tuples().all()
        out.update(e for e, event_id, by in rows if by == source and event_id.startswith(prefix))
    return out


def states(session: Session, employee_ids: Sequence[str]) -> dict[str, str]:
    ids, out = sorted(set(employee_ids)), {}
    for start in range(0, len(ids), 500):
        out.update(session.execute(select(Identity.employee_id, Identity.state)
                                   .where(Identity.employee_id.in_(ids[start:start + 500]))).tuples().all())
    return out
