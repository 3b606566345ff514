"""Scheduled snapshot pulls: each new file in a source's drop folder imported once, as a snapshot.

A scan of one source (``scan``) runs under the named lock ``hr-snapshots:<source>``, so one
process at a time looks at a folder. Each ready file (``files.candidates``) is hashed, then:

- the same file was applied and is still in the folder (the process stopped after the import
  committed, before the move: its name, size and content, the archive path its row names not
  there): it is only moved;
- its content is that of the latest applied file (``hr_snapshot_files``): nothing would be new,
  it is recorded ``duplicate`` and archived;
- otherwise (new content, or that of an earlier file: a change reverted) it is validated whole (``csv_import.read``, every bad row named) and stored as a
  snapshot (``csv_import.store``: the same event ids derived from content, the people missing,
  with ``terminate_missing`` their terminations under the share guard; rows said again after
  something else changed the person stored again, ``reassert``, the rows of leavers terminated by
  another channel held and reported) in one transaction with its ``applied`` row, the claim (a
  unique index; ``reapplied`` for the content of an earlier file), then moved to ``archive/``;
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
    """What one scan did with one file. ``outcome``: applied, reapplied, duplicate, failed (FileStatus),
    archived (applied before, moved now), waiting (not settled), gone, error (left for the next scan)."""

    file: str
    outcome: str
    detail: str
    moved_to: str | None = None
    problems: tuple[str, ...] = ()
    result: ImportResult | None = None
    held: tuple[str, ...] = ()  # employee ids of leavers of another channel whose rows were not stored


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
    return _seen(db, source, section, file, digest) or _import(db, settings, source, section, file, digest)


class _Raced(Exception):
    """Another take applied a file of this source between the decision and the claim."""


def _seen(db: Database, source: str, section: SnapshotSection, file: Candidate, digest: str) -> Pick | None:
    """This very file applied and not moved (only the move is left), or the content of the latest
    applied file (a duplicate); None: the file is to be imported."""
    with db.read() as session:
        before = repository.applications(session, source, digest)
        latest = repository.latest_applied(session, source)
    for done in reversed(before):
        if (done.file_name, done.size) == (file.name, file.size) and done.archived_to and not _exists(done.archived_to):
            # Applied, then the process stopped before (or failed) moving it: only the move is left.
            moved = _archive(file, Path(done.archived_to), source)
            when = _at(done.picked_at)
            return Pick(file.name, ARCHIVED, f"applied at {when}; archived now" if moved else
                        f"applied at {when}; not archived (see the log)", done.archived_to if moved else None)
    if latest is not None and latest.sha256 == digest:
        return _duplicate(db, source, section, file, digest, latest)
    return None


def _import(db: Database, settings: Settings, source: str, section: SnapshotSection, file: Candidate,
            digest: str) -> Pick:
    picked = utcnow()
    try:
        try:
            parsed = csv_import.read(db, file.path, effective_days=(settings.hr_effective_past_days,
                                                                    settings.hr_effective_future_days))
        except FileNotFoundError:  # taken by another process meanwhile
            return Pick(file.name, GONE, "no longer in the folder")
        if file.changed():
            return Pick(file.name, WAITING, "changed while it was read: taken once unchanged")
        to = files.destination(section.archive, file.name, picked)
        with db.transaction() as session:
            # Taken again under the write lock (SQLite) or the latest row's lock (PostgreSQL): a take
            # that lost the race to another finds this file's content applied last, and gives way.
            latest = repository.latest_applied(session, source, lock=True)
            if latest is not None and latest.sha256 == digest:
                raise _Raced
            before = repository.applications(session, source, digest)
            row = repository.add(session, SnapshotFile(  # the claim: one applied row per content
                source=source, file_name=file.name, sha256=digest, size=file.size, picked_at=picked,
                status=FileStatus.REAPPLIED if before else FileStatus.APPLIED, counts={}, archived_to=str(to),
                duplicate_of=before[0].id if before else None))
            said = reassert.reasserted(session, parsed, digest, source=source, application=len(before) + 1)
            result = csv_import.store(
                session, said.parsed, source=source, snapshot=True, terminate_missing=section.terminate_missing,
                max_terminate_share=_share(settings, section), termination_source=source,
                termination_tag=_tag(digest, len(before) + 1))
            row.counts = {**_counts(result), "reasserted": said.again, "held": len(said.held)}
            append(session, f"hr_snapshot.{row.status}", source, file=file.name, sha256=digest, size=file.size,
                   archived_to=str(to), terminate_missing=section.terminate_missing, duplicate_of=row.duplicate_of,
                   held_employee_ids=list(said.held), **row.counts)
            status = row.status
    except CsvImportError as exc:
        problems = [p.replace(f"{file.path}:", f"{file.name}:", 1) for p in exc.problems]
        return _reject(db, source, section, file, digest, problems, exc.total)
    except (SnapshotGuardError, ConflictError) as exc:
        return _reject(db, source, section, file, digest, [f"{file.name}: {exc}".replace(str(file.path), file.name)], 1)
    except (IntegrityError, _Raced):  # another process applied this file meanwhile
        seen = _seen(db, source, section, file, digest)
        if seen is None:
            raise
        return seen
    FILES.labels(source, status).inc()
    again = said.again
    said_again = f" ({again} of them rows said again after a change)" if again else ""
    detail = (f"{result.new} event(s) stored{said_again}, {result.duplicates} already known; {len(result.missing)} of "
              f"{result.population} employed people missing")
    if section.terminate_missing:
        detail += f", {result.terminations_new} terminate event(s) stored"
    if said.held:
        detail += (f"; {len(said.held)} row(s) of people terminated by another channel not stored "
                   f"({_listed(said.held)}): not rehired by this extract")
        log.warning("HR snapshot %s of %s lists %d person(s) terminated by another channel: not rehired (%s)",
                    file.name, source, len(said.held), _listed(said.held),
                    extra={"alert": "hr_snapshot_terminated_elsewhere", "hr_source": source, "sha256": digest,
                           "employee_ids": list(said.held)})
    log.info("HR snapshot %s of %s %s: %s", file.name, source, status, detail,
             extra={"hr_source": source, "sha256": digest, "reasserted": again, "held": len(said.held),
                    **_counts(result)})
    moved = _archive(file, to, source)
    return Pick(file.name, status, detail + ("; archived" if moved else "; not archived (see the log)"),
                str(to) if moved else None, result=result, held=said.held)


def _duplicate(db: Database, source: str, section: SnapshotSection, file: Candidate, digest: str,
               done: SnapshotFile) -> Pick:
    """The content of the latest applied file: nothing in it would be new."""
    when = _at(done.picked_at)
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
    detail = f"the same content as {done.file_name}, the latest applied (at {when}): not applied again"
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


def _tag(digest: str, application: int) -> str:
    """What tells this application of the content from the earlier ones in the ids of its terminations."""
    return digest[:16] if application <= 1 else f"{digest[:16]}-{application}"


def _listed(ids: tuple[str, ...], at_most: int = 10) -> str:
    return ", ".join(ids[:at_most]) + (f" and {len(ids) - at_most} more" if len(ids) > at_most else "")


def _at(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")
