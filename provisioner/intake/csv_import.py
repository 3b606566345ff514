"""``provisioner import FILE.csv``: an HR extract as events (initial load or catch-up).

One row per person. Columns: ``employee_id`` (required), the HR attribute names of the event
format (given_name, family_name, department, ...), optionally ``type`` (hire, update, transfer,
leave, return, terminate, rehire) and ``effective_at``; any other column becomes an extra
attribute. Without ``type`` a row is a hire for an unknown person and an update otherwise. Each
row's event id is derived from its content, so importing the same file twice changes nothing.
The whole file is validated before anything is stored.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities.models import Identity
from provisioner.intake import repository, service
from provisioner.intake.schemas import HRAttributes, HREventIn

_ATTRS = set(HRAttributes.model_fields) - {"extra"}
_META = {"employee_id", "type", "effective_at", "event_id"}


class CsvImportError(ValueError):
    pass


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "employee_id" not in reader.fieldnames:
            raise CsvImportError(f"{path}: the header row must include employee_id")
        for number, row in enumerate(reader, start=2):
            yield number, {k.strip(): (v or "").strip() for k, v in row.items() if k}


def parse(path: Path, known: set[str], now: datetime) -> list[HREventIn]:
    events = []
    for line, row in _rows(path):
        attrs: dict[str, Any] = {k: v for k, v in row.items() if k in _ATTRS and v != ""}
        extra = {k: v for k, v in row.items() if k not in _ATTRS | _META and v != ""}
        if extra:
            attrs["extra"] = extra
        etype = row.get("type") or ("update" if row.get("employee_id") in known else "hire")
        digest = hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()[:16]
        data = {"event_id": row.get("event_id") or f"import-{row.get('employee_id')}-{digest}",
                "type": etype, "employee_id": row.get("employee_id"),
                "effective_at": row.get("effective_at") or now.isoformat(), "attributes": attrs}
        try:
            events.append(HREventIn.model_validate(data))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"]) or "row"
            raise CsvImportError(f"{path}:{line}: {field}: {err['msg'].removeprefix('Value error, ')}") from exc
    return events


def import_file(db: Database, path: Path, *, source: str = "csv-import", chunk: int = 1000,
                progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Validate the whole file, then store it in one transaction. Returns (new, duplicates)."""
    with db.transaction() as session:
        known = set(session.scalars(select(Identity.employee_id).where(Identity.employee_id.is_not(None))))
    events = parse(path, known, utcnow())
    new = dup = 0
    with db.transaction() as session:
        # A row's event id comes from its content; rows without effective_at take "now", so a
        # row seen before is a repeat whatever its default time.
        stored = repository.known_digests(session, [e.event_id for e in events])
        dup = sum(e.event_id in stored for e in events)
        events = [e for e in events if e.event_id not in stored]
        if progress and dup:
            progress(dup)
        for start in range(0, len(events), chunk):
            receipts = service.accept(session, events[start:start + chunk], source)
            dup += sum(r.duplicate for r in receipts)
            new += sum(not r.duplicate for r in receipts)
            if progress:
                progress(len(receipts))
    return new, dup
