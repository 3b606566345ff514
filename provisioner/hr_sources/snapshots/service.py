"""Scheduled snapshot pulls: each new file in a source's drop folder imported once, as a snapshot.

A scan of one source (``scan``) runs under the named lock ``hr-snapshots:<source>``, so one
process at a time looks at a folder. Each ready file (``files.candidates``) is hashed, then:

- its content was applied before (``hr_snapshot_files``): nothing is applied again. The same file
  still in the folder (the process stopped after the import committed, before the move) is moved
  to the archive path its row names; other files with that content are recorded ``duplicate`` and
  archived;
- otherwise it is validated whole (``csv_import.read``, every bad row named) and stored as a
  snapshot (``csv_import.store``: the same event ids derived from content, the people missing,
  with ``terminate_missing`` their terminations under the share guard; rows said again after
  something else changed the person stored again, ``reassert``) in one transaction with its
  ``applied`` row, the claim (a unique index), then moved to ``archive/``;
- a file that cannot be applied (bad rows, the guard, an event id already used for another body)
  is recorded ``failed`` with its errors, moved to ``rejected/`` with ``<name>.errors.txt``
  beside it, logged with ``alert: hr_snapshot_rejected``; nothing of it is stored.

Events and terminations carry the source's name as ``source``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.hr_sources.declarations import HrSource, SnapshotSection
from provisioner.hr_sources.snapshots import files, reassert, repository
from provisioner.hr_sources.snapshots.files import Candidate
from provisioner.hr_sources.snapshots.models import FileStatus, SnapshotFile
from provisioner.intake import csv_import
from provisioner.intake.csv_import import CsvImportError, ImportResult, SnapshotGuardError
from provisioner.intake.service import ConflictError
from provisioner.settings import Settings

log = logging.getLogger(__name__)

FILES = Counter("provisioner_hr_snapshot_files_total",
                "Snapshot files taken from an HR source's drop folder, by outcome (applied, duplicate, failed)",
                ["source", "outcome"])
WAITING, GONE, ARCHIVED, ERROR = "waiting", "gone", "archived", "error"


@dataclass(frozen=True, slots=True)
class Pick:
    """What one scan did with one file. ``outcome``: applied, duplicate, failed (FileStatus),
    archived (applied before, moved now), waiting (not settled), gone, error (left for the next scan)."""

    file: str
    outcome: str
    detail: str
    moved_to: str | None = None
    problems: tuple[str, ...] = ()
    result: ImportResult | None = None


@dataclass
class Scan:
    source: str
    picks: list[Pick] = field(default_factory=list)
    skipped: str | None = None  # why the folder was not looked at

    @property
    def stored(self) -> bool:
        """Events were stored: the processor has work."""
        return any(p.result is not None and (p.result.new or p.result.terminations_new) for p in self.picks)


def scan(db: Database, settings: Settings, source: HrSource) -> Scan:
    """Take every ready file of ``source``'s folder, oldest first."""
    section = source.snapshot
    assert section is not None, "only sources with a snapshot section are scanned"
    lock = db.named_lock(f"hr-snapshots:{source.name}")
    if not lock.acquire(0):
        log.info("HR snapshots of %s: skipped, another process is scanning", source.name,
                 extra={"hr_source": source.name, "skipped": "locked"})
        return Scan(source.name, skipped="another process is scanning this folder")
    try:
        if not section.folder.is_dir():
            log.error("HR snapshots of %s: the folder %s does not exist", source.name, section.folder,
                      extra={"alert": "hr_snapshot_folder_missing", "hr_source": source.name})
            return Scan(source.name, skipped=f"{section.folder}: no such folder (snapshot.folder)")
        result = Scan(source.name)
        for candidate in files.candidates(section.folder, section.pattern):
            try:
                result.picks.append(take(db, settings, source.name, section, candidate))
            except Exception as exc:  # the file stays where it is: the next scan tries again, and
                # the newer files wait behind it (an older extract never applies after a newer one)
                log.exception("HR snapshot %s of %s: not taken, the next scan tries again", candidate.name,
                              source.name, extra={"alert": "hr_snapshot_error", "hr_source": source.name})
                result.picks.append(Pick(candidate.name, ERROR, f"{type(exc).__name__}: {exc}".splitlines()[0]))
                break
        return result
    finally:
        lock.release()


def with_snapshots(sources: Mapping[str, HrSource]) -> list[HrSource]:
    """The sources that declare a snapshot folder."""
    return [source for source in sources.values() if source.snapshot is not None]


def take(db: Database, settings: Settings, source: str, section: SnapshotSection, file: Candidate) -> Pick:
    """One file: wait for it to settle, recognise content applied before, or import it."""
    if file.age() < section.settle_seconds:
        return Pick(file.name, WAITING, f"modified {max(file.age(), 0):.0f} s ago: taken once unchanged for "
                                        f"{section.settle_seconds:g} s (snapshot.settle_seconds)")
    try:
        digest = files.sha256(file.path)
    except FileNotFoundError:
        return Pick(file.name, GONE, "no longer in the folder")
    with db.read() as session:
        done = repository.applied(session, source, digest)
    if done is not None:
        return _seen_before(db, source, section, file, digest, done)
    return _import(db, settings, source, section, file, digest)


def _import(db: Database, settings: Settings, source: str, section: SnapshotSection, file: Candidate,
            digest: str) -> Pick:
    picked = utcnow()
    try:
        parsed = csv_import.read(db, file.path, effective_days=(settings.hr_effective_past_days,
                                                                settings.hr_effective_future_days))
        if file.changed():
            return Pick(file.name, WAITING, "changed while it was read: taken once unchanged")
        to = files.destination(section.archive, file.name, picked)
        with db.transaction() as session:
            row = repository.add(session, SnapshotFile(  # the claim: one applied row per content
                source=source, file_name=file.name, sha256=digest, size=file.size, picked_at=picked,
                status=FileStatus.APPLIED, counts={}, archived_to=str(to)))
            parsed, again = reassert.reasserted(session, parsed, digest)
            result = csv_import.store(
                session, parsed, source=source, snapshot=True, terminate_missing=section.terminate_missing,
                max_terminate_share=_share(settings, section), termination_source=source)
            row.counts = {**_counts(result), "reasserted": again}
            append(session, "hr_snapshot.applied", source, file=file.name, sha256=digest, size=file.size,
                   archived_to=str(to), terminate_missing=section.terminate_missing, **row.counts)
    except CsvImportError as exc:
        problems = [p.replace(f"{file.path}:", f"{file.name}:", 1) for p in exc.problems]
        return _reject(db, source, section, file, digest, problems, exc.total)
    except (SnapshotGuardError, ConflictError) as exc:
        return _reject(db, source, section, file, digest, [f"{file.name}: {exc}".replace(str(file.path), file.name)], 1)
    except IntegrityError:  # another process applied this content meanwhile
        with db.read() as session:
            done = repository.applied(session, source, digest)
        if done is None:
            raise
        return _seen_before(db, source, section, file, digest, done)
    FILES.labels(source, FileStatus.APPLIED).inc()
    said = f" ({again} of them rows said again after a change)" if again else ""
    detail = (f"{result.new} event(s) stored{said}, {result.duplicates} already known; {len(result.missing)} of "
              f"{result.population} employed people missing")
    if section.terminate_missing:
        detail += f", {result.terminations_new} terminate event(s) stored"
    log.info("HR snapshot %s of %s applied: %s", file.name, source, detail,
             extra={"hr_source": source, "sha256": digest, "reasserted": again, **_counts(result)})
    moved = _archive(file, to, source)
    return Pick(file.name, FileStatus.APPLIED, detail + ("; archived" if moved else "; not archived (see the log)"),
                str(to) if moved else None, result=result)


def _seen_before(db: Database, source: str, section: SnapshotSection, file: Candidate, digest: str,
                 done: SnapshotFile) -> Pick:
    when = _at(done.picked_at)
    if done.file_name == file.name and done.archived_to and not _exists(done.archived_to):
        # Applied, then the process stopped before (or failed) moving it: only the move is left.
        moved = _archive(file, Path(done.archived_to), source)
        return Pick(file.name, ARCHIVED, f"applied at {when}; archived now" if moved else
                    f"applied at {when}; not archived (see the log)", done.archived_to if moved else None)
    picked = utcnow()
    to = files.destination(section.archive, file.name, picked)
    if not _archive(file, to, source):  # moved first: a file another scan took is not recorded twice
        return Pick(file.name, GONE, "no longer in the folder")
    with db.transaction() as session:
        repository.add(session, SnapshotFile(
            source=source, file_name=file.name, sha256=digest, size=file.size, picked_at=picked,
            status=FileStatus.DUPLICATE, counts={}, archived_to=str(to), duplicate_of=done.id))
        append(session, "hr_snapshot.duplicate", source, file=file.name, sha256=digest,
               duplicate_of=done.id, applied_file=done.file_name, archived_to=str(to))
    FILES.labels(source, FileStatus.DUPLICATE).inc()
    detail = f"the same content as {done.file_name}, applied at {when}: not applied again"
    log.warning("HR snapshot %s of %s: %s; archived", file.name, source, detail,
                extra={"hr_source": source, "sha256": digest, "duplicate_of": done.id})
    return Pick(file.name, FileStatus.DUPLICATE, detail + "; archived", str(to))


def _reject(db: Database, source: str, section: SnapshotSection, file: Candidate, digest: str,
            problems: list[str], total: int) -> Pick:
    """Recorded, then moved to rejected/ with its errors beside it; nothing of it was stored."""
    picked = utcnow()
    to = files.destination(section.rejected, file.name, picked)
    with db.transaction() as session:
        repository.add(session, SnapshotFile(
            source=source, file_name=file.name, sha256=digest, size=file.size, picked_at=picked,
            status=FileStatus.FAILED, counts={"problems": total}, errors=problems, archived_to=str(to)))
        append(session, "hr_snapshot.failed", source, file=file.name, sha256=digest, problems=total,
               moved_to=str(to))
    FILES.labels(source, FileStatus.FAILED).inc()
    more = [f"... and {total - len(problems)} more (the first {len(problems)} are listed)"] if total > len(problems) else []
    header = (f"{file.name} (HR source {source}, sha256 {digest}) was refused at {_at(picked)}: {total} problem(s); "
              "nothing of it was applied. Fix the extract and drop it again.")
    moved = False
    try:
        moved = files.move(file.path, to)
        if moved:
            files.write_errors(to, [header, *problems, *more])
    except OSError:
        log.exception("HR snapshot %s of %s: could not be moved to %s", file.name, source, to,
                      extra={"alert": "hr_snapshot_move_failed", "hr_source": source})
    log.error("HR snapshot %s of %s refused: %d problem(s), nothing applied; moved to %s (errors in %s.errors.txt)",
              file.name, source, total, to, to.name,
              extra={"alert": "hr_snapshot_rejected", "hr_source": source, "sha256": digest, "problems": total,
                     "first_problem": problems[0] if problems else None})
    return Pick(file.name, FileStatus.FAILED, f"{total} problem(s), nothing applied",
                str(to) if moved else None, problems=tuple(problems + more))


def _archive(file: Candidate, to: Path, source: str) -> bool:
    try:
        return files.move(file.path, to)
    except OSError:
        log.exception("HR snapshot %s of %s: applied, but could not be moved to %s (the next scan moves it)",
                      file.name, source, to, extra={"alert": "hr_snapshot_move_failed", "hr_source": source})
        return False


def _exists(path: str) -> bool:
    return Path(path).exists()


def _share(settings: Settings, section: SnapshotSection) -> float:
    return settings.snapshot_max_terminate_share if section.max_terminate_share is None else section.max_terminate_share


def _counts(result: ImportResult) -> dict[str, int]:
    return {"new": result.new, "known": result.duplicates, "population": result.population,
            "missing": len(result.missing), "terminations_new": result.terminations_new,
            "terminations_known": result.terminations_known}


def _at(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")
