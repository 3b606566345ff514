"""``hr_snapshot_files``: every snapshot file a scan took, and what became of it.

A file's content is first applied once per source: the partial unique index on (source, sha256)
among ``applied`` rows is the claim, taken in the transaction that stores the file's events, so two
processes (or a restart after a crash) never apply the same new content twice. The content of an
earlier file that is not the latest applied one (a transfer reverted by the next extract) is applied
again, as a ``reapplied`` row (no unique index: the scans of a folder take turns under a named lock,
and its events' ids carry the number of the application, so a second take stores nothing new).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from provisioner import limits
from provisioner.db import Base, JSONType, UTCDateTime

FILE_NAME = 255  # a file name on Linux and most file systems (bytes, so at most as many characters)


class FileStatus:
    APPLIED = "applied"  # its events (and terminations) were stored; archived (archived_to)
    REAPPLIED = "reapplied"  # the content of an earlier file (duplicate_of), not the latest: applied again
    DUPLICATE = "duplicate"  # the content of the latest applied file (duplicate_of): archived, nothing applied
    FAILED = "failed"  # refused (errors): moved to the rejected folder, nothing applied


class SnapshotFile(Base):
    __tablename__ = "hr_snapshot_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(limits.SOURCE))
    file_name: Mapped[str] = mapped_column(String(FILE_NAME))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    picked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    # applied: {"new", "known", "population", "missing", "terminations_new", "terminations_known"};
    # failed: {"problems": how many (errors holds the first 100)}
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    errors: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    archived_to: Mapped[str | None] = mapped_column(Text, nullable=True)  # archive/ or rejected/ path
    duplicate_of: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_hr_snapshot_files_applied", "source", "sha256", unique=True,
              postgresql_where=text("status = 'applied'"), sqlite_where=text("status = 'applied'")),
        Index("ix_hr_snapshot_files_picked", "source", "picked_at"),
    )
