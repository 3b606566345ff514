"""Queries for snapshot files (``hr_snapshot_files``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.hr_sources.snapshots.models import FileStatus, SnapshotFile


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
