"""All queries on HR events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, String, and_, bindparam, exists, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session

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


def _is_held(kind: str, at: datetime, pk: int, failed_first: tuple[datetime, int] | None, known: bool) -> bool:
    """``kind`` at (``at``, ``pk``) waits behind the person's earliest failed event ``failed_first``."""
    if failed_first is None or failed_first >= (at, pk) or kind in NEVER_HELD:
        return False
    return not (kind in REVOKING and known)


def has_due(session: Session, now: datetime) -> bool:
    """Whether any HR event is due and still to be applied (the claim's own streams, each probed
    for its first row): the worker holds back partial group additions meanwhile."""
    return any(session.scalar(stream.limit(1)) is not None
               for stream in _due_streams(now, terminations_only=False))


def claim_due(session: Session, now: datetime, limit: int, *, skip_locked: bool) -> Sequence[HREvent]:
    """Due pending events, terminations first (immediate ones ahead of all), then in effective
    order. An event is held back while an earlier due event of the same person is still
    pending, so one person's events apply in order even with several processors, and while an
    earlier event of the person failed (see ``NEVER_HELD`` / ``REVOKING`` for what never waits;
    an event held that way holds nothing back itself).

    The cost follows ``limit``, not the backlog: candidates are read page by page in index
    order (``_due_streams``), and whether each is held back is decided from one read of its
    people's pending and failed events (``_Holds``)."""
    chosen = _claimable(session, now, limit, _due_streams(now, terminations_only=False))
    if not chosen:
        return []
    # (Still pending is checked here, not in SQL: SQLite would then walk the status index.)
    stmt = select(HREvent).where(HREvent.id.in_(chosen))
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True, of=HREvent)
    found = {e.id: e for e in session.scalars(stmt) if e.status == EventStatus.PENDING}
    return [found[pk] for pk in chosen if pk in found]


def due_terminations(session: Session, now: datetime, limit: int) -> list[int]:
    """Due terminations not held back by an earlier due event of the same person (immediate
    ones first): looked for between the events of a long batch, so as cheap as ``claim_due``."""
    return _claimable(session, now, limit, _due_streams(now, terminations_only=True))


class _Row(NamedTuple):
    id: int
    employee_id: str
    effective_at: datetime
    type: str


_ROW = (HREvent.id, HREvent.employee_id, HREvent.effective_at, HREvent.type)


def _due_streams(now: datetime, *, terminations_only: bool) -> list[Select]:
    """Due pending events in claim order, as statements each ordered by (effective_at, id) on an
    index (``ix_hr_events_due``, ``ix_hr_events_terminations``): immediate terminations, the
    other due terminations, then everything else that is due. (Only a terminate may be
    immediate: the intake refuses anything else.)"""
    pending = HREvent.status == EventStatus.PENDING
    due = HREvent.effective_at <= now
    streams = [
        select(*_ROW).where(pending, HREvent.immediate.is_(True)),
        select(*_ROW).where(pending, HREvent.type == "terminate", HREvent.immediate.is_(False), due),
    ]
    if not terminations_only:
        streams.append(select(*_ROW).where(pending, HREvent.immediate.is_(False), due,
                                           HREvent.type != "terminate"))
    return streams


def _claimable(session: Session, now: datetime, limit: int, streams: list[Select]) -> list[int]:
    """The first ``limit`` rows of the streams, in order, that are not held back. A page whose
    rows are all held back is followed by the next one (keyset paging), so due events further
    on are still found."""
    chosen: list[int] = []
    holds = _Holds(session, now)
    page = max(limit, 50)
    for stream in streams:
        after: tuple[datetime, int] | None = None
        while len(chosen) < limit:
            stmt = stream
            if after is not None:
                stmt = stmt.where(tuple_(HREvent.effective_at, HREvent.id) > tuple_(*after))
            rows = [_Row(*r) for r in session.execute(
                stmt.order_by(HREvent.effective_at, HREvent.id).limit(page)).tuples()]
            holds.learn({r.employee_id for r in rows})
            chosen.extend(r.id for r in rows if not holds.held(r))
            if len(rows) < page:
                break
            after = (rows[-1].effective_at, rows[-1].id)
        if len(chosen) >= limit:
            break
    return chosen[:limit]


_PEOPLE_CHUNK = 100  # people per look-up: small enough that PostgreSQL probes the index


class _Holds:
    """What holds people's events back, read once per person (two indexed queries per page of
    candidates): their earliest failed event, whether they have a record, and their earliest
    pending due event that is not itself held."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        self.seen: set[str] = set()
        self.failed: dict[str, tuple[datetime, int]] = {}
        self.known: set[str] = set()
        self.earliest: dict[str, tuple[datetime, int]] = {}

    def learn(self, people: set[str]) -> None:
        new = list(people - self.seen)
        if not new:
            return
        self.seen.update(new)
        pending: list[tuple[int, str, datetime, str]] = []
        for start in range(0, len(new), _PEOPLE_CHUNK):
            part = new[start:start + _PEOPLE_CHUNK]
            # Every event of these people (a few each), the status sorted out here: with it in
            # SQL, SQLite would walk the status index (the whole backlog) instead.
            for pk, employee_id, at, kind, status in self.session.execute(
                    select(*_ROW, HREvent.status).where(HREvent.employee_id.in_(part))).tuples():
                if status == EventStatus.FAILED:
                    self.failed[employee_id] = min(self.failed.get(employee_id, (at, pk)), (at, pk))
                elif status == EventStatus.PENDING and at <= self.now:
                    pending.append((pk, employee_id, at, kind))
        failing = [e for e in new if e in self.failed]
        for start in range(0, len(failing), 500):
            self.known.update(self.session.scalars(
                select(Identity.employee_id).where(Identity.employee_id.in_(failing[start:start + 500]))))
        for pk, employee_id, at, kind in pending:
            if not self._behind_failure(kind, at, pk, employee_id):
                self.earliest[employee_id] = min(self.earliest.get(employee_id, (at, pk)), (at, pk))

    def _behind_failure(self, kind: str, at: datetime, pk: int, employee_id: str) -> bool:
        return _is_held(kind, at, pk, self.failed.get(employee_id), employee_id in self.known)

    def held(self, row: _Row) -> bool:
        key = (row.effective_at, row.id)
        return (self.earliest.get(row.employee_id, key) < key
                or self._behind_failure(row.type, row.effective_at, row.id, row.employee_id))


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


def terminations_between(session: Session, start: datetime, end: datetime,
                         employee_id: str | None = None) -> Sequence[HREvent]:
    query = select(HREvent).where(HREvent.type == "terminate", HREvent.status == EventStatus.APPLIED,
                                  HREvent.effective_at >= start, HREvent.effective_at < end)
    if employee_id is not None:
        query = query.where(HREvent.employee_id == employee_id)
    return session.scalars(query.order_by(HREvent.effective_at, HREvent.id)).all()


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


# -- following one import to the end (provisioner/cli/progress.py) -----------------------------
def _imported(sources: Sequence[str], since: datetime):
    return and_(HREvent.source.in_(list(sources)), HREvent.received_at >= since)


def import_counts(session: Session, sources: Sequence[str], since: datetime, now: datetime) -> dict[str, int]:
    """The events of these sources received since ``since`` (one import) by status; pending
    ones that are not due yet are counted as ``not_due`` instead."""
    not_due = and_(HREvent.status == EventStatus.PENDING, HREvent.immediate.is_(False), HREvent.effective_at > now)
    counts: dict[str, int] = {}
    for status, later, n in session.execute(
            select(HREvent.status, not_due, func.count()).where(_imported(sources, since))
            .group_by(HREvent.status, not_due)).tuples():
        key = "not_due" if later else status
        counts[key] = counts.get(key, 0) + n
    return counts


def import_triggers(sources: Sequence[str], since: datetime) -> Select:
    """The plan triggers (``event:<event_id>``) of these events, for the queue's progress."""
    return select(literal("event:", String) + HREvent.event_id).where(_imported(sources, since))
