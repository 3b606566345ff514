"""``provisioner import FILE.csv``: an HR extract as events (initial load or catch-up).

One row per person. Columns: ``employee_id`` (required), the HR attribute names of the event
format (given_name, family_name, department, ...), optionally ``type`` (hire, update, transfer,
leave, return, terminate, rehire) and ``effective_at``; any other column becomes an extra
attribute. Without ``type`` a row is a hire for an unknown person and an update otherwise. Each
row's event id is derived from its content, so importing the same file twice changes nothing.
The whole file is validated before anything is stored, and every bad row is reported (field
limits as for the HTTP intake; the same event or the same person hired twice names both lines;
the first 100 problems are listed, with the count of all).

``--snapshot``: the file is the full truth of who is employed. After its rows, the people the
service knows as employed (active, on leave, pre-hire; from HR) who are not in it are reported,
and with ``terminate_missing`` each gets a terminate event (source ``snapshot``, effective now,
event id ``snapshot-<file sha256>-<employee id>``, so importing the same file again adds none).
A guard refuses that when more than ``snapshot_max_terminate_share`` of the employed would go,
unless forced: a truncated extract must not terminate the company.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from provisioner import limits
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities.lifecycle import EventType
from provisioner.identities.models import Identity
from provisioner.intake import repository, service
from provisioner.intake.schemas import EffectiveWindow, HRAttributes, HREventIn
from provisioner.intake.validation import MAX_REPORTED, batch_conflicts, field_errors

_ATTRS = set(HRAttributes.model_fields) - {"extra"}
_META = {"employee_id", "type", "effective_at", "event_id"}
SNAPSHOT_SOURCE = "snapshot"
MISSING_TERMINATION = "snapshot-"  # the event id prefix of the terminations of the people missing


class CsvImportError(ValueError):
    """The file cannot be imported; ``problems`` holds one ``file:line: field: reason`` each, the
    first MAX_REPORTED of ``total``."""

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems: {problems[0]} ...")
        self.problems = problems[:MAX_REPORTED]
        self.total = max(total or 0, len(problems))


class SnapshotGuardError(ValueError):
    """Terminating the people missing from a snapshot would end too large a share of everyone."""


@dataclass(frozen=True, slots=True)
class Missing:
    employee_id: str
    name: str
    state: str


@dataclass
class ImportResult:
    new: int = 0
    duplicates: int = 0
    # --snapshot only: the employed people missing from the file, and of how many employed
    population: int = 0
    missing: list[Missing] = field(default_factory=list)
    terminations_new: int = 0
    terminations_known: int = 0


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            if not reader.fieldnames or "employee_id" not in reader.fieldnames:
                raise CsvImportError([f"{path}:1: the header row must include employee_id"])
            for row in reader:
                yield reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k}
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except csv.Error as exc:
            raise _Unreadable(reader.line_num, f"not readable as CSV ({exc})") from None


def _derived_id(employee_id: str, digest: str) -> str:
    """A row's event id from its content (a bad employee_id is reported once, on its own field)."""
    if len(employee_id) <= limits.EMPLOYEE_ID and re.fullmatch(limits.IDENTIFIER_PATTERN, employee_id):
        return f"import-{employee_id}-{digest}"
    return f"import-{digest}"


def _not_utf8(path: Path) -> _Unreadable:
    """Where the file stops being UTF-8 (text is decoded in blocks, so the reader cannot say)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return _Unreadable(line, f"not UTF-8 text ({exc.reason} at byte {exc.start}): save the file as UTF-8")
    return _Unreadable(1, "not UTF-8 text: save the file as UTF-8")


class _Unreadable(Exception):
    def __init__(self, line: int, reason: str) -> None:
        self.line, self.reason = line, reason


def parse(path: Path, known: set[str], now: datetime, window: EffectiveWindow | None = None) -> list[HREventIn]:
    """Every row as an event; raises CsvImportError naming every bad row (not only the first),
    the same event or the same hire twice (both lines), the first MAX_REPORTED with the count."""
    valid: list[tuple[int, HREventIn]] = []
    problems: list[str] = []
    total = 0

    def report(line: int, field: str, message: str) -> None:
        nonlocal total
        total += 1
        if len(problems) < MAX_REPORTED:
            problems.append(f"{path}:{line}: {field}: {message}")

    context = {"window": window} if window is not None else None
    try:
        for line, row in _rows(path):
            attrs: dict[str, Any] = {k: v for k, v in row.items() if k in _ATTRS and v != ""}
            extra = {k: v for k, v in row.items() if k not in _ATTRS | _META and v != ""}
            if extra:
                attrs["extra"] = extra
            etype = row.get("type") or ("update" if row.get("employee_id") in known else "hire")
            digest = hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()[:16]
            data = {"event_id": row.get("event_id") or _derived_id(row.get("employee_id") or "", digest),
                    "type": etype, "employee_id": row.get("employee_id"),
                    "effective_at": row.get("effective_at") or now.isoformat(), "attributes": attrs}
            try:
                valid.append((line, HREventIn.model_validate(data, context=context)))
            except ValidationError as exc:
                for err in field_errors(exc):
                    report(line, err.field, err.message)
    except _Unreadable as exc:  # the rest of the file cannot be read reliably
        report(exc.line, "file", exc.reason)
    for err in batch_conflicts(valid, lambda line: f"line {line}", lambda line, name: f"{line}\0{name}"):
        line, field = err.field.split("\0")
        report(int(line), field, err.message)
    if problems:
        problems.sort(key=lambda p: int(p[len(str(path)) + 1:].split(":", 1)[0]))
        raise CsvImportError(problems, total)
    return [event for _, event in valid]


def _store(session: Session, events: list[HREventIn], source: str, chunk: int,
           progress: Callable[[int], None] | None) -> tuple[int, int]:
    """Store what is new through the intake service. Returns (new, already known)."""
    # A row's event id comes from its content; rows without effective_at take "now", so a
    # row seen before is a repeat whatever its default time.
    stored = repository.known_digests(session, [e.event_id for e in events])
    dup = sum(e.event_id in stored for e in events)
    events = [e for e in events if e.event_id not in stored]
    if progress and dup:
        progress(dup)
    new = 0
    for start in range(0, len(events), chunk):
        receipts = service.accept(session, events[start:start + chunk], source)
        dup += sum(r.duplicate for r in receipts)
        new += sum(not r.duplicate for r in receipts)
        if progress:
            progress(len(receipts))
    return new, dup


def _name(person: Identity) -> str:
    return person.display_name or " ".join(p for p in (person.given_name, person.family_name) if p) or "?"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A whole file read and validated, nothing stored yet (``read``; ``store`` stores it)."""

    path: Path
    events: list[HREventIn]
    now: datetime


def read(db: Database, path: Path, *, effective_days: tuple[int, int] | None = None) -> Parsed:
    """Validate the whole file (raises CsvImportError naming every bad row). ``effective_days``:
    how many days back and ahead an ``effective_at`` may lie (the settings' window)."""
    with db.read() as session:
        known = repository.known_employee_ids(session)
    now = utcnow()
    window = EffectiveWindow(now, *effective_days) if effective_days else None
    return Parsed(path, parse(path, known, now, window), now)


def store(session: Session, parsed: Parsed, *, source: str = "csv-import", chunk: int = 1000,
          progress: Callable[[int], None] | None = None, snapshot: bool = False,
          terminate_missing: bool = False, max_terminate_share: float = 0.1, force: bool = False,
          termination_source: str = SNAPSHOT_SOURCE, termination_tag: str | None = None) -> ImportResult:
    """Store a read file (and, for a snapshot with ``terminate_missing``, the terminations,
    recorded with ``termination_source``, event ids ``snapshot-<termination_tag>-<employee id>``,
    by default the file's SHA-256, 16 hex) in the caller's transaction."""
    events, result = parsed.events, ImportResult()
    if snapshot:
        present = {e.employee_id for e in events}
        employed = repository.employed_from_hr(session)
        result.population = len(employed)
        result.missing = [Missing(p.employee_id or "", _name(p), p.state)
                          for p in employed if p.employee_id not in present]
    terminations = (_terminations(parsed.path, result, parsed.now, max_terminate_share, force, termination_tag)
                    if terminate_missing else [])
    result.new, result.duplicates = _store(session, events, source, chunk, progress)
    result.terminations_new, result.terminations_known = _store(session, terminations, termination_source,
                                                                chunk, None)
    return result


def import_file(db: Database, path: Path, *, source: str = "csv-import", chunk: int = 1000,
                progress: Callable[[int], None] | None = None, snapshot: bool = False,
                terminate_missing: bool = False, max_terminate_share: float = 0.1,
                force: bool = False, effective_days: tuple[int, int] | None = None) -> ImportResult:
    """Validate the whole file, then store it (and, for a snapshot with ``terminate_missing``,
    the terminations) in one transaction: all of it or nothing."""
    parsed = read(db, path, effective_days=effective_days)
    with db.transaction() as session:
        return store(session, parsed, source=source, chunk=chunk, progress=progress, snapshot=snapshot,
                     terminate_missing=terminate_missing, max_terminate_share=max_terminate_share, force=force)


def _terminations(path: Path, result: ImportResult, now: datetime, max_share: float,
                  force: bool, tag: str | None = None) -> list[HREventIn]:
    share = len(result.missing) / result.population if result.population else 0.0
    if share > max_share and not force:
        raise SnapshotGuardError(
            f"{len(result.missing)} of {result.population} employed people ({share:.0%}) are missing from "
            f"{path}, more than PROVISIONER_SNAPSHOT_MAX_TERMINATE_SHARE ({max_share:.0%}): nothing was "
            "stored; check that the extract is complete, then re-run with --force to terminate them")
    file_sha = tag or hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return [HREventIn(event_id=f"{MISSING_TERMINATION}{file_sha}-{m.employee_id}", type=EventType.TERMINATE,
                      employee_id=m.employee_id, effective_at=now) for m in result.missing]
