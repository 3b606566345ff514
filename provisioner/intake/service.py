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


@dataclass
class Submission:
    """One request's events, as the group-commit writer handles them."""

    events: list[HREventIn]
    source: str
    receipts: list[Receipt] | None = None
    error: ConflictError | None = None


def accept(session: Session, events: list[HREventIn], source: str) -> list[Receipt]:
    """Store new events, recognise repeats; raise ConflictError before storing anything."""
    [sub] = accept_many(session, [Submission(events, source)])
    if sub.error is not None:
        raise sub.error
    assert sub.receipts is not None
    return sub.receipts


def accept_many(session: Session, submissions: list[Submission]) -> list[Submission]:
    """Accept several requests in one transaction (group commit). Each request is all or
    nothing on its own: a conflict in one leaves the others to be stored."""
    now = utcnow()
    known = repository.known_digests(session, [e.event_id for sub in submissions for e in sub.events])
    rows: list[dict] = []
    for sub in submissions:
        try:
            sub.receipts, new_rows = _prepare(sub, known, now)
        except ConflictError as exc:
            sub.error = exc
            continue
        rows.extend(new_rows)
        for row in new_rows:  # later requests in the group see these as already stored
            known[row["event_id"]] = repository.Known(row["body_sha256"], now, row["effective_at"])
    if rows:
        repository.insert_events(session, rows)
        append_many(session, [
            Entry("hr_event.received", row["employee_id"],
                  {"event_id": row["event_id"], "type": row["type"], "source": row["source"],
                   "effective_at": row["effective_at"].isoformat(), "immediate": row["immediate"],
                   "sha256": row["body_sha256"]})
            for row in rows
        ])
    return submissions


def _prepare(sub: Submission, known: dict[str, repository.Known], now) -> tuple[list[Receipt], list[dict]]:
    receipts: list[Receipt] = []
    rows: list[dict] = []
    mine: dict[str, repository.Known] = {}
    for index, event in enumerate(sub.events):
        digest = event.body_sha256()
        prior = mine.get(event.event_id) or known.get(event.event_id)
        if prior is not None:
            if prior.body_sha256 != digest:
                raise ConflictError(event.event_id, index)
            receipts.append(Receipt(event_id=event.event_id, received_at=prior.received_at,
                                    effective_at=prior.effective_at, duplicate=True))
            continue
        effective = event.effective_at.astimezone(UTC)
        rows.append({
            "event_id": event.event_id, "source": sub.source, "type": event.type.value,
            "employee_id": event.employee_id, "effective_at": effective, "immediate": event.immediate,
            "cancels_event_id": event.cancels_event_id, "body_sha256": digest,
            "payload": event.model_dump(mode="json", exclude_unset=True), "received_at": now,
            "status": EventStatus.PENDING,
        })
        mine[event.event_id] = repository.Known(digest, now, effective)  # a repeat in the request
        receipts.append(Receipt(event_id=event.event_id, received_at=now, effective_at=effective))
    return receipts, rows
