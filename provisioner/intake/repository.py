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


# A person's later events wait behind an earlier event of theirs that failed (they might apply
# out of order over it), except what must never wait: a cancel (it only withdraws a pending
# event) and a terminate or leave of someone who has a record (access to revoke). A terminate
# of someone whose hire failed waits too: there is nothing to revoke yet, and applied first it
# would be refused and the replayed hire would then grant access to a leaver.
NEVER_HELD = ("cancel",)
REVOKING = ("terminate", "leave")


def _held_behind_failure(event=HREvent):
    """``event`` (HREvent or an alias) waits behind an earlier failed event of its person."""
    failed = aliased(HREvent)
    behind = exists().where(
        failed.employee_id == event.employee_id,
        failed.status == EventStatus.FAILED,
        tuple_(failed.effective_at, failed.id) < tuple_(event.effective_at, event.id),
    )
    revokes = and_(event.type.in_(REVOKING), exists().where(Identity.employee_id == event.employee_id))
    return and_(behind, event.type.not_in(NEVER_HELD), ~revokes)


def _is_held(kind: str, at: datetime, pk: int, failed_first: tuple[datetime, int] | None, known: bool) -> bool:
    """The same rule as ``_held_behind_failure``, for rows already read."""
    if failed_first is None or failed_first >= (at, pk) or kind in NEVER_HELD:
        return False
    return not (kind in REVOKING and known)


def claim_due(session: Session, now: datetime, limit: int, *, skip_locked: bool) -> Sequence[HREvent]:
    """Due pending events, terminations first (immediate ones ahead of all), then in effective
    order. An event is held back while an earlier due event of the same person is still
    pending, so one person's events apply in order even with several processors, and while an
    earlier event of the person failed (see ``NEVER_HELD`` / ``REVOKING`` for what never waits;
    an event held that way holds nothing back itself)."""
    earlier = aliased(HREvent)
    blocked = exists().where(
        and_(
            earlier.employee_id == HREvent.employee_id,
            earlier.status == EventStatus.PENDING,
            earlier.effective_at <= now,
            tuple_(earlier.effective_at, earlier.id) < tuple_(HREvent.effective_at, HREvent.id),
            ~_held_behind_failure(earlier),
        )
    )
    # An immediate termination fires now, whatever its effective time, waiting only for the
    # same person's earlier due events (their hire, say) and ahead of everyone else's work.
    stmt = (
        select(HREvent)
        .where(HREvent.status == EventStatus.PENDING, ~blocked, ~_held_behind_failure(),
               or_(HREvent.immediate.is_(True), HREvent.effective_at <= now))
        .order_by(HREvent.immediate.desc(), (HREvent.type == "terminate").desc(), HREvent.effective_at, HREvent.id)
        .limit(limit)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True, of=HREvent)
    return session.scalars(stmt).all()


def due_terminations(session: Session, now: datetime, limit: int) -> list[int]:
    """Due terminations not held back by an earlier due event of the same person: looked for
    between the events of a long batch, so cheap indexed queries (no correlated subquery)."""
    due = or_(HREvent.immediate.is_(True), HREvent.effective_at <= now)
    found = session.execute(
        select(HREvent.id, HREvent.employee_id, HREvent.effective_at)
        .where(HREvent.status == EventStatus.PENDING, HREvent.type == "terminate", due)
        .order_by(HREvent.immediate.desc(), HREvent.effective_at, HREvent.id).limit(limit)).tuples().all()
    if not found:
        return []
    people = {e for _, e, _ in found}
    # Held behind a failed event (see _held_behind_failure): read once for these people.
    failed: dict[str, tuple[datetime, int]] = {}
    for pk, employee_id, at in session.execute(
            select(HREvent.id, HREvent.employee_id, HREvent.effective_at)
            .where(HREvent.employee_id.in_(people), HREvent.status == EventStatus.FAILED)).tuples():
        failed[employee_id] = min(failed.get(employee_id, (at, pk)), (at, pk))
    known = set(session.scalars(select(Identity.employee_id).where(Identity.employee_id.in_(list(failed))))
                ) if failed else set()
    earliest: dict[str, tuple[datetime, int]] = {}
    for pk, employee_id, at, kind in session.execute(
            select(HREvent.id, HREvent.employee_id, HREvent.effective_at, HREvent.type)
            .where(HREvent.employee_id.in_(people), HREvent.status == EventStatus.PENDING,
                   HREvent.effective_at <= now)).tuples():
        if not _is_held(kind, at, pk, failed.get(employee_id), employee_id in known):
            earliest[employee_id] = min(earliest.get(employee_id, (at, pk)), (at, pk))
    return [pk for pk, employee_id, at in found if earliest.get(employee_id, (at, pk)) >= (at, pk)
            and not _is_held("terminate", at, pk, failed.get(employee_id), employee_id in known)]


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


def lock_pending_many(session: Session, event_pks: Sequence[int], *, skip_locked: bool) -> list[HREvent]:
    """Those of these events still pending (another processor may have taken some), in the
    order given."""
    stmt = select(HREvent).where(HREvent.id.in_(list(event_pks)), HREvent.status == EventStatus.PENDING)
    if skip_locked:
        stmt = stmt.order_by(HREvent.id).with_for_update(skip_locked=True)
    found = {e.id: e for e in session.scalars(stmt)}
    return [found[pk] for pk in event_pks if pk in found]


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


def pending_from_source_many(session: Session, employee_ids: Iterable[str],
                             source: str) -> dict[str, list[HREvent]]:
    """``pending_from_source`` for many people at once."""
    ids = sorted(set(employee_ids))
    out: dict[str, list[HREvent]] = {}
    for start in range(0, len(ids), 500):
        for event in session.scalars(select(HREvent).where(
                HREvent.employee_id.in_(ids[start:start + 500]), HREvent.source == source,
                HREvent.status == EventStatus.PENDING).order_by(HREvent.id)):
            out.setdefault(event.employee_id, []).append(event)
    return out


def failed_events(session: Session, event_ids: Iterable[str] | None = None) -> Sequence[HREvent]:
    """Failed events (these ids, or all), locked: for replay or discard."""
    stmt = select(HREvent).where(HREvent.status == EventStatus.FAILED)
    if event_ids is not None:
        stmt = stmt.where(HREvent.event_id.in_(list(event_ids)))
    return session.scalars(stmt.order_by(HREvent.effective_at, HREvent.id).with_for_update()).all()


def held_behind(session: Session, event: HREvent) -> Sequence[HREvent]:
    """The person's pending events that wait behind this failed one (what its replay releases)."""
    return session.scalars(
        select(HREvent).where(HREvent.employee_id == event.employee_id, HREvent.status == EventStatus.PENDING,
                              tuple_(HREvent.effective_at, HREvent.id) > tuple_(event.effective_at, event.id),
                              HREvent.type.not_in(NEVER_HELD))
        .order_by(HREvent.effective_at, HREvent.id)).all()
