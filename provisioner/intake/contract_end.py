"""Contract end: a person's ``end_date`` ends their access at the end of that day.

The service schedules the end as an HR event of its own (source ``contract_end``, type
``terminate``) effective at midnight after ``end_date`` in the configured time zone
(``PROVISIONER_CONTRACT_END_TIMEZONE``, default UTC). Being an ordinary pending event, it shows
in ``provisioner plan`` as a pending change, can be read like any other event, and moves (the
old one is cancelled, a new one scheduled) whenever HR moves or clears the date. An end already
past when HR sends it applies at once, before anything is provisioned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from provisioner.identities.lifecycle import State
from provisioner.identities.models import Identity
from provisioner.intake import repository
from provisioner.intake.models import EventStatus, HREvent
from provisioner.jsonutil import canonical

SOURCE = "contract_end"


def ends_at(end_date: date, timezone: str) -> datetime:
    """The instant access ends: midnight after ``end_date`` in ``timezone``, in UTC."""
    local = datetime.combine(end_date + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)


def _event_id(session: Session, employee_id: str, end_date: date) -> tuple[str, HREvent | None]:
    """A stable id per person and date; a date HR sets again reuses its (cancelled) event."""
    base = f"contract-end-{employee_id}-{end_date.isoformat()}"
    for n in range(1, 1000):
        event_id = base if n == 1 else f"{base}-{n}"
        existing = repository.get(session, event_id)
        if existing is None or existing.status in (EventStatus.CANCELLED, EventStatus.PENDING):
            return event_id, existing
    raise RuntimeError(f"too many contract ends for {employee_id} on {end_date}")


def schedule(session: Session, identity: Identity, timezone: str, now: datetime,
             cause: str, pending: Sequence[HREvent] | None = None) -> HREvent | None:
    """Make the person's pending contract end match their ``end_date`` and state; returns it.
    ``pending``: the person's pending contract ends, if a batch read them already."""
    employee_id = identity.employee_id or ""
    wanted = (ends_at(identity.end_date, timezone)
              if identity.end_date is not None and identity.state != State.TERMINATED else None)
    keep: HREvent | None = None
    if pending is None:
        pending = repository.pending_from_source(session, employee_id, SOURCE)
    for event in pending:
        if keep is None and wanted is not None and event.effective_at == wanted:
            keep = event
            continue
        event.status, event.processed_at = EventStatus.CANCELLED, now
        event.status_reason = (f"end_date moved to {identity.end_date} by {cause}" if wanted is not None
                               else f"no contract end any more ({cause})")
    if wanted is None or keep is not None:
        return keep
    event_id, existing = _event_id(session, employee_id, identity.end_date)
    payload = {"event_id": event_id, "type": "terminate", "employee_id": employee_id,
               "effective_at": wanted.isoformat(), "immediate": False, "cancels_event_id": None,
               "attributes": {}, "contract_end": {"end_date": identity.end_date.isoformat(),
                                                  "timezone": timezone, "set_by": cause}}
    if existing is None:
        existing = HREvent(event_id=event_id, source=SOURCE, type="terminate", employee_id=employee_id,
                           immediate=False, cancels_event_id=None)
        session.add(existing)
    existing.effective_at, existing.payload, existing.received_at = wanted, payload, now
    existing.body_sha256 = hashlib.sha256(canonical(payload)).hexdigest()
    existing.status, existing.status_reason, existing.processed_at = EventStatus.PENDING, None, None
    session.flush()
    return existing
