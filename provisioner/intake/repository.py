"""All queries on HR events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, exists, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from provisioner.db import insert_rows
from provisioner.identities.lifecycle import State
from provisioner.identities.models import Identity
from provisioner.intake.models import EventStatus, HREvent


class Known(NamedTuple):
    body_sha256: str
    received_at: datetime
    effective_at: datetime


def known_digests(session: Session, event_ids: Iterable[str]) -> dict[str, Known]:
    """What is already stored under these event ids (for idempotency)."""
    ids = list(dict.fromkeys(event_ids))
    found: dict[str, Known] = {}
    conn = session.connection()
    for start in range(0, len(ids), 500):
        rows = conn.execute(_KNOWN, {"ids": ids[start:start + 500]})
        found.update({r.event_id: Known(r.body_sha256, r.received_at, r.effective_at) for r in rows})
    return found


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    insert_rows(session, HREvent, rows)


# Built once: the intake hot path.
_KNOWN = (select(HREvent.event_id, HREvent.body_sha256, HREvent.received_at, HREvent.effective_at)
          .where(HREvent.event_id.in_(bindparam("ids", expanding=True))))



def get(session: Session, event_id: str) -> HREvent | None:
    return session.scalar(select(HREvent).where(HREvent.event_id == event_id))


def claim_due(session: Session, now: datetime, limit: int, *, skip_locked: bool) -> Sequence[HREvent]:
    """Due pending events, terminations first (immediate ones ahead of all), then in effective
    order. An event is held back while an earlier due event of the same person is still
    pending, so one person's events apply in order even with several processors."""
    earlier = aliased(HREvent)
    blocked = exists().where(
        and_(
            earlier.employee_id == HREvent.employee_id,
            earlier.status == EventStatus.PENDING,
            earlier.effective_at <= now,
            tuple_(earlier.effective_at, earlier.id) < tuple_(HREvent.effective_at, HREvent.id),
        )
    )
    # An immediate termination fires now, whatever its effective time, waiting only for the
    # same person's earlier due events (their hire, say) and ahead of everyone else's work.
    stmt = (
        select(HREvent)
        .where(HREvent.status == EventStatus.PENDING, ~blocked,
               or_(HREvent.immediate.is_(True), HREvent.effective_at <= now))
        .order_by(HREvent.immediate.desc(), (HREvent.type == "terminate").desc(), HREvent.effective_at, HREvent.id)
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True, of=HREvent)
    return session.scalars(stmt).all()


def due_terminations(session: Session, now: datetime, limit: int) -> list[int]:
    """Due terminations not held back by an earlier due event of the same person: looked for
    between the events of a long batch, so two cheap indexed queries (no correlated subquery)."""
    due = or_(HREvent.immediate.is_(True), HREvent.effective_at <= now)
    found = session.execute(
        select(HREvent.id, HREvent.employee_id, HREvent.effective_at)
        .where(HREvent.status == EventStatus.PENDING, HREvent.type == "terminate", due)
        .order_by(HREvent.immediate.desc(), HREvent.effective_at, HREvent.id).limit(limit)).tuples().all()
    if not found:
        return []
    earliest: dict[str, tuple[datetime, int]] = {}
    for pk, employee_id, at in session.execute(
            select(HREvent.id, HREvent.employee_id, HREvent.effective_at)
            .where(HREvent.employee_id.in_({e for _, e, _ in found}), HREvent.status == EventStatus.PENDING,
                   HREvent.effective_at <= now)).tuples():
        earliest[employee_id] = min(earliest.get(employee_id, (at, pk)), (at, pk))
    return [pk for pk, employee_id, at in found if earliest.get(employee_id, (at, pk)) >= (at, pk)]


def future_hires_without_identity(session: Session, now: datetime, limit: int) -> Sequence[HREvent]:
    stmt = (
        select(HREvent)
        .where(
            HREvent.status == EventStatus.PENDING,
            HREvent.type == "hire",
            HREvent.effective_at > now,
            ~exists().where(Identity.employee_id == HREvent.employee_id),
        )
        .order_by(HREvent.effective_at)
        .limit(limit)
    )
    return session.scalars(stmt).all()


def pending_for(session: Session, employee_id: str) -> Sequence[HREvent]:
    return session.scalars(
        select(HREvent)
        .where(HREvent.employee_id == employee_id, HREvent.status == EventStatus.PENDING)
        .order_by(HREvent.effective_at, HREvent.id)
    ).all()


def terminations_between(session: Session, start: datetime, end: datetime) -> Sequence[HREvent]:
    return session.scalars(
        select(HREvent)
        .where(HREvent.type == "terminate", HREvent.status == EventStatus.APPLIED,
               HREvent.effective_at >= start, HREvent.effective_at < end)
        .order_by(HREvent.effective_at, HREvent.id)
    ).all()


def next_due_at(session: Session) -> datetime | None:
    return session.scalar(
        select(HREvent.effective_at).where(HREvent.status == EventStatus.PENDING)
        .order_by(HREvent.effective_at).limit(1))


def lock_pending(session: Session, event_pk: int, *, skip_locked: bool) -> HREvent | None:
    """The event if it is still pending (another processor may have taken it meanwhile)."""
    stmt = select(HREvent).where(HREvent.id == event_pk, HREvent.status == EventStatus.PENDING)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalar(stmt)


def listing(session: Session, *, source: str | None = None, status: str | None = None,
            employee_id: str | None = None, since: datetime | None = None,
            after_id: int | None = None, limit: int = 100, newest_first: bool = False) -> Sequence[HREvent]:
    """Events filtered for ``GET /hr/events`` (oldest first, paged after an id) and the CLI
    (newest first). ``since``: received or settled at or after that time."""
    stmt = select(HREvent)
    if source is not None:
        stmt = stmt.where(HREvent.source == source)
    if status is not None:
        stmt = stmt.where(HREvent.status == status)
    if employee_id is not None:
        stmt = stmt.where(HREvent.employee_id == employee_id)
    if since is not None:
        stmt = stmt.where(or_(HREvent.received_at >= since, HREvent.processed_at >= since))
    if after_id is not None:
        stmt = stmt.where(HREvent.id < after_id if newest_first else HREvent.id > after_id)
    order = HREvent.id.desc() if newest_first else HREvent.id
    return session.scalars(stmt.order_by(order).limit(limit)).all()


def for_employee(session: Session, employee_id: str) -> Sequence[HREvent]:
    """Every event for one person, whatever became of it, in effective order."""
    return session.scalars(select(HREvent).where(HREvent.employee_id == employee_id)
                           .order_by(HREvent.effective_at, HREvent.id)).all()


def known_employee_ids(session: Session) -> set[str]:
    return set(session.scalars(select(Identity.employee_id).where(Identity.employee_id.is_not(None))))


EMPLOYED_STATES = (State.ACTIVE.value, State.ON_LEAVE.value, State.PRE_HIRE.value)


def employed_from_hr(session: Session) -> Sequence[Identity]:
    """People HR says are employed (active, on leave or not yet started): a full extract must
    hold every one of them."""
    return session.scalars(select(Identity)
                           .where(Identity.source == "hr", Identity.state.in_(EMPLOYED_STATES),
                                  Identity.employee_id.is_not(None))
                           .order_by(Identity.employee_id)).all()


def pending_from_source(session: Session, employee_id: str, source: str) -> Sequence[HREvent]:
    """A person's pending events from one source (the contract ends the service scheduled)."""
    return session.scalars(
        select(HREvent).where(HREvent.employee_id == employee_id, HREvent.source == source,
                              HREvent.status == EventStatus.PENDING).order_by(HREvent.id)
    ).all()
