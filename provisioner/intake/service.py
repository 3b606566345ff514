"""Accept HR events: validated, idempotent on ``event_id``, all or nothing per request.

The caller (the HTTP endpoint or the CSV import) commits; only then is the 202 sent, so an
accepted event is durable before the HR system is told so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from sqlalchemy.orm import Session

from provisioner.audit.service import Entry, append_many
from provisioner.clock import utcnow
from provisioner.intake import repository
from provisioner.intake.models import EventStatus
from provisioner.intake.schemas import HREventIn, Receipt


@dataclass
class ConflictError(Exception):
    """A known event_id arrived with a different body (HTTP 409)."""

    event_id: str
    index: int

    def __str__(self) -> str:
        return (f"events[{self.index}].event_id {self.event_id!r} was already accepted with a "
                "different body; send a new event_id for a new event")


def accept(session: Session, events: list[HREventIn], source: str) -> list[Receipt]:
    """Store new events, recognise repeats; raise ConflictError before storing anything."""
    now = utcnow()
    known = repository.known_digests(session, [e.event_id for e in events])
    receipts: list[Receipt] = []
    rows: list[dict] = []
    for index, event in enumerate(events):
        digest = event.body_sha256()
        prior = known.get(event.event_id)
        if prior is not None:
            if prior.body_sha256 != digest:
                raise ConflictError(event.event_id, index)
            receipts.append(Receipt(event_id=event.event_id, received_at=prior.received_at,
                                    effective_at=prior.effective_at, duplicate=True))
            continue
        effective = event.effective_at.astimezone(UTC)
        rows.append({
            "event_id": event.event_id, "source": source, "type": event.type.value,
            "employee_id": event.employee_id, "effective_at": effective, "immediate": event.immediate,
            "cancels_event_id": event.cancels_event_id, "body_sha256": digest,
            "payload": event.model_dump(mode="json", exclude_unset=True), "received_at": now,
            "status": EventStatus.PENDING,
        })
        # A repeat within the same request is a duplicate of this one.
        known[event.event_id] = repository.Known(digest, now, effective)
        receipts.append(Receipt(event_id=event.event_id, received_at=now, effective_at=effective))
    if rows:
        repository.insert_events(session, rows)
        append_many(session, [
            Entry("hr_event.received", row["employee_id"],
                  {"event_id": row["event_id"], "type": row["type"], "source": source,
                   "effective_at": row["effective_at"].isoformat(), "immediate": row["immediate"],
                   "sha256": row["body_sha256"]})
            for row in rows
        ])
    return receipts
