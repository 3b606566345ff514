"""Apply due HR events: state machine, attributes, then a stored plan with queued operations.

Runs as a job (the scheduler, ``provisioner serve`` and the demo call it). Immediate
terminations go first. Revocations (terminate, leave) and cancels are applied one transaction
each, ahead of everything else; joiners, movers, returns and rehires are applied in batches
(``BATCHED``): one transaction per batch, the batch's people and logins read once and its plans
stored in bulk (``planner.service.plan_many``), a batch kept short (``BATCH_SECONDS``) so that
terminations arriving meanwhile are looked for between batches. One person has at most one
event in a batch; their later events are claimed again in the next round.

Isolation: if anything in a batch raises, the batch is rolled back and its events are applied
again one transaction each, so only the bad one fails. An event whose processing raises (a
value the database refuses, a bug) is rolled back and marked ``failed`` with the reason,
counted, logged as an alert (``fate``), and the run goes on with everyone else's events. The
person's later events wait behind it, except a cancel and a terminate or leave of someone with a
record (``repository.claim_due``); after the cause is fixed, ``provisioner events replay`` sets
it back to pending. An error that says the database was busy or unavailable (``db.is_transient``)
leaves the event pending for the next round instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from provisioner.audit.service import append, deferred
from provisioner.clock import utcnow
from provisioner.db import Database, is_transient
from provisioner.identities import repository as identities
from provisioner.identities.lifecycle import EventType
from provisioner.identities.models import Identity
from provisioner.identities.service import (
    LIFECYCLE_EVENTS,
    Preloaded,
    apply_hr_event,
    login_candidate,
)
from provisioner.intake import contract_end as contract_end_
from provisioner.intake import fate, repository
from provisioner.intake.models import EventStatus, HREvent
from provisioner.planner.service import PlanningContext, PlanRequest, plan_many

log = logging.getLogger(__name__)


@dataclass
class ProcessStats:
    applied: int = 0
    superseded: int = 0
    cancelled: int = 0
    rejected: int = 0
    pre_hires: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.applied + self.superseded + self.cancelled + self.rejected + self.pre_hires + self.failed

    def add(self, other: ProcessStats) -> None:
        for name in ("applied", "superseded", "cancelled", "rejected", "pre_hires", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _finish(event: HREvent, status: str, reason: str | None = None) -> None:
    event.status, event.status_reason, event.processed_at = status, reason, utcnow()
    fate.settled(event)  # counted, and logged at WARNING if rejected/superseded, once committed


def process_event(session: Session, ctx: PlanningContext, event: HREvent, stats: ProcessStats) -> None:
    request = apply_event(session, ctx, event, stats)
    if request is not None:
        plan_many(session, ctx, [request])


@dataclass
class _Batch:
    """What a batch read once: its people and logins, and their pending contract ends."""

    people: Preloaded
    contract_ends: dict[str, list[HREvent]]
    known_managers: set[str] = field(default_factory=set)  # managers named in the batch who have a record


def apply_event(session: Session, ctx: PlanningContext, event: HREvent, stats: ProcessStats,
                batch: _Batch | None = None) -> PlanRequest | None:
    """Apply one event to the person's record; returns the plan to make, if any."""
    etype = EventType(event.type)
    if etype == EventType.CANCEL:
        target = repository.get(session, event.cancels_event_id or "")
        if target is None or target.employee_id != event.employee_id:
            _finish(event, EventStatus.REJECTED, f"no event {event.cancels_event_id!r} for this employee")
            stats.rejected += 1
        elif target.status != EventStatus.PENDING:
            _finish(event, EventStatus.REJECTED,
                    f"event {target.event_id!r} is already {target.status}: too late to cancel")
            stats.rejected += 1
        else:
            _finish(target, EventStatus.CANCELLED, f"withdrawn by {event.event_id}")
            _finish(event, EventStatus.DONE)
            stats.cancelled += 1
        append(session, "hr_event.cancel", event.employee_id, event_id=event.event_id,
               cancels=event.cancels_event_id, result=event.status, reason=event.status_reason)
        return None
    preloaded = batch.people if batch is not None else None
    identity = (preloaded.person(session, event.employee_id) if preloaded is not None
                else identities.by_employee_id(session, event.employee_id, lock=True))
    previous = identity.state if identity is not None else None
    attributes = event.payload.get("attributes", {})
    bad_dates = _dates_problem(identity, etype, attributes)
    if bad_dates:
        _finish(event, EventStatus.REJECTED, bad_dates)
        append(session, "lifecycle.rejected", event.employee_id, event_id=event.event_id,
               event_type=etype.value, from_state=previous, reason=bad_dates)
        stats.rejected += 1
        return None
    contract_end = event.source == contract_end_.SOURCE
    applied = apply_hr_event(session, employee_id=event.employee_id, event_type=etype,
                             event_id=event.event_id, effective_at=event.effective_at,
                             attributes=attributes, naming=ctx.naming,
                             ordered=not (event.immediate or contract_end), preloaded=preloaded)
    if applied.superseded:
        reason = applied.transition.reason
        _finish(event, EventStatus.SUPERSEDED, reason)
        append(session, "hr_event.superseded", event.employee_id, event_id=event.event_id, reason=reason)
        stats.superseded += 1
        return None
    if not applied.transition.accepted:
        _finish(event, EventStatus.REJECTED, applied.transition.reason)
        stats.rejected += 1
        return None
    assert applied.identity is not None
    _finish(event, EventStatus.APPLIED)
    _note_late(event)
    _check_manager(session, event, attributes, batch)
    stats.applied += 1
    immediate = event.immediate
    # The contract end follows every change of end_date or state; one already past applies
    # now, before anything is provisioned for the person.
    now = utcnow()
    ending = contract_end_.schedule(session, applied.identity, ctx.contract_end_timezone, now,
                                    cause=event.event_id,
                                    pending=batch.contract_ends.get(event.employee_id, [])
                                    if batch is not None else None)
    if ending is not None and ending.effective_at <= now and ending.id != event.id:
        ended = apply_hr_event(session, employee_id=event.employee_id, event_type=EventType.TERMINATE,
                               event_id=ending.event_id, effective_at=ending.effective_at,
                               attributes={}, naming=ctx.naming, ordered=False, preloaded=preloaded)
        if ended.transition.accepted:
            _finish(ending, EventStatus.APPLIED)
            stats.applied += 1
            immediate = True
    return PlanRequest(applied.identity, trigger=f"event:{event.event_id}", previous_state=previous,
                       immediate=immediate)


def _check_manager(session: Session, event: HREvent, attributes: dict, batch: _Batch | None) -> None:
    """A manager the service does not know (no record with that employee id, not even earlier in
    this batch) is a warning on the event: applied, and the manager link is written when that
    person arrives (``fate.views`` says whether they have)."""
    manager = attributes.get("manager_employee_id")
    if not manager:
        return
    if batch is not None:
        known = manager in batch.known_managers or batch.people.people.get(manager) is not None
    else:
        known = bool(identities.known_employee_ids(session, [manager]))
    if not known:
        fate.warn(event, fate.unknown_manager(manager))


def _dates_problem(identity: Identity | None, etype: EventType, attributes: dict) -> str | None:
    """An end_date before the start_date (as the event leaves them) is refused, naming the field."""
    replace = etype in (EventType.HIRE, EventType.REHIRE)
    start = attributes.get("start_date") if (replace or "start_date" in attributes) else (
        identity.start_date if identity is not None else None)
    end = attributes.get("end_date") if (replace or "end_date" in attributes) else (
        identity.end_date if identity is not None else None)
    start = date.fromisoformat(start) if isinstance(start, str) else start
    end = date.fromisoformat(end) if isinstance(end, str) else end
    if start is not None and end is not None and end < start:
        return f"attributes.end_date: {end} is before the start_date {start}"
    return None


def _note_late(event: HREvent) -> None:
    """A back-dated lifecycle event applies now; say so (the evidence shows all three times)."""
    late = (event.received_at - event.effective_at).total_seconds()
    if event.type in LIFECYCLE_EVENTS and late > 60:
        # Access that should already have ended is an alert; a late joiner is only news.
        level = logging.WARNING if event.type in ("terminate", "leave") else logging.INFO
        log.log(level, "back-dated %s %s for %s applied now: effective %s, received %s (%.0f s late)",
                    event.type, event.event_id, event.employee_id, event.effective_at.isoformat(),
                    event.received_at.isoformat(), late,
                    extra={"event_id": event.event_id, "employee_id": event.employee_id,
                           "alert": "back_dated_event"})


URGENT_CHECK_SECONDS = 0.25


class _UrgentCheck:
    def __init__(self) -> None:
        self.next = time.monotonic() + URGENT_CHECK_SECONDS

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + URGENT_CHECK_SECONDS
        return True


Work = Callable[[Session, HREvent, ProcessStats], None]


def _apply_one(db: Database, ctx: PlanningContext, event_pk: int, stats: ProcessStats, skip_locked: bool,
               work: Work | None = None) -> int:
    """One event in its own transaction (1 if it was settled here, 0 if another processor had
    it or it stays pending). If the work raises, the event is marked failed instead."""
    def apply(session: Session, event: HREvent, mine: ProcessStats) -> None:
        process_event(session, ctx, event, mine)
    work = work or apply
    mine = ProcessStats()  # counted only once the transaction commits
    try:
        with db.transaction() as session:
            event = repository.lock_pending(session, event_pk, skip_locked=skip_locked)
            if event is None:
                return 0
            work(session, event, mine)
    except Exception as exc:
        return _failed(db, event_pk, exc, stats, skip_locked)
    stats.add(mine)
    return 1


def failure_reason(exc: BaseException) -> str:
    """One line naming the error; for a database error the driver's message (which says what
    the database refused, e.g. ``value too long for type character varying(200)``), not the SQL."""
    cause = getattr(exc, "orig", None) or exc
    text = " ".join(str(cause).split()) or repr(cause)
    return f"{type(cause).__name__}: {text}"[:1000]


def _failed(db: Database, event_pk: int, exc: Exception, stats: ProcessStats, skip_locked: bool) -> int:
    reason = failure_reason(exc)
    if is_transient(exc):
        log.warning("HR event #%d left pending, tried again next round: the database was busy or "
                    "unavailable (%s)", event_pk, reason, extra={"alert": "hr_event_retry"})
        return 0
    log.error("processing HR event #%d raised; marked failed, the other events go on", event_pk,
              exc_info=exc)
    try:
        with db.transaction() as session:
            event = repository.lock_pending(session, event_pk, skip_locked=skip_locked)
            if event is None:
                return 0
            _finish(event, EventStatus.FAILED, reason)  # counted and logged as an alert once committed
            append(session, "hr_event.failed", event.employee_id, event_id=event.event_id,
                   event_type=event.type, reason=reason)
    except Exception:
        log.exception("could not mark HR event #%d failed; it stays pending", event_pk,
                      extra={"alert": "hr_event_retry"})
        return 0
    stats.failed += 1
    return 1


def _pre_hire(ctx: PlanningContext) -> Work:
    def work(session: Session, event: HREvent, stats: ProcessStats) -> None:
        applied = apply_hr_event(session, employee_id=event.employee_id, event_type=EventType.HIRE,
                                 event_id=event.event_id, effective_at=event.effective_at,
                                 attributes=event.payload.get("attributes", {}), naming=ctx.naming,
                                 pre_hire=True)
        if applied.identity is not None:
            contract_end_.schedule(session, applied.identity, ctx.contract_end_timezone, utcnow(),
                                   cause=event.event_id)
        stats.pre_hires += 1
    return work


# Planned in batches; revocations and cancels are applied one transaction each, first.
BATCHED = frozenset({EventType.HIRE, EventType.UPDATE, EventType.TRANSFER, EventType.RETURN, EventType.REHIRE})
BATCH_MAX = 200  # events in one batch transaction
BATCH_SECONDS = 0.25  # a batch's size follows the rate measured, so it takes about this long


def _read_batch(session: Session, ctx: PlanningContext, events: list[HREvent]) -> _Batch:
    """The batch's people (locked), the logins new people would take, their contract ends."""
    employee_ids = [e.employee_id for e in events]
    found = identities.by_employee_ids(session, employee_ids, lock=True)
    people = Preloaded({e: found.get(e) for e in employee_ids})
    naming = ctx.naming
    people.names.preload(session, [c for e in events if people.people[e.employee_id] is None
                                   and (c := login_candidate(naming, e.employee_id,
                                                             e.payload.get("attributes", {}))) is not None])
    managers = {m for e in events if (m := e.payload.get("attributes", {}).get("manager_employee_id"))}
    return _Batch(people, repository.pending_from_source_many(session, employee_ids, contract_end_.SOURCE),
                  identities.known_employee_ids(session, managers))


def _apply_batch(db: Database, ctx: PlanningContext, event_pks: list[int], stats: ProcessStats,
                 skip_locked: bool, should_stop: Callable[[], bool]) -> int:
    """The events in one transaction (one person at most once); if anything raises, the batch
    is rolled back and its events applied one transaction each (only the bad one fails)."""
    mine = ProcessStats()  # counted only once the transaction commits
    try:
        with db.transaction() as session:
            events = repository.lock_pending_many(session, event_pks, skip_locked=skip_locked)
            batch = _read_batch(session, ctx, events)
            with deferred(session):  # the audit chain's head is locked once, at the end
                requests = [r for e in events if (r := apply_event(session, ctx, e, mine, batch)) is not None]
                batch.people.store(session)
                plan_many(session, ctx, requests)
    except Exception as exc:
        log.warning("a batch of %d HR events raised (%s); applying them one transaction each",
                    len(event_pks), failure_reason(exc))
        done = 0
        for pk in event_pks:
            if should_stop():
                break
            done += _apply_one(db, ctx, pk, stats, skip_locked)
        return done
    stats.add(mine)
    return len(events)


def process_due(db: Database, ctx: PlanningContext, *, limit: int = 500,
                should_stop: Callable[[], bool] | None = None) -> ProcessStats:
    """Apply every due event (claimed ``limit`` at a time) and open pre-hire records.

    Terminations go first: a round is claimed with them at its head and applied one
    transaction each; while the round's batches of joiners are applied, terminations that
    arrived meanwhile are looked for every ``URGENT_CHECK_SECONDS`` (between batches, each at
    most about ``BATCH_SECONDS`` long) and applied first (revocation never waits behind an
    onboarding wave). ``should_stop`` is asked between events and batches: a stopping process
    stops within a batch's time."""
    stopping = should_stop or (lambda: False)
    stats = ProcessStats()
    skip_locked = db.dialect == "postgresql"
    clock = _UrgentCheck()
    size = min(50, BATCH_MAX)  # the first batch; then sized to take about BATCH_SECONDS

    def urgent() -> int:
        if not clock.due():
            return 0
        with db.read() as session:
            found = repository.due_terminations(session, utcnow(), limit)
        return sum(_apply_one(db, ctx, pk, stats, skip_locked) for pk in found if not stopping())

    while not stopping():
        with db.transaction() as session:
            claimed = [(e.id, e.employee_id, e.type) for e in
                       repository.claim_due(session, utcnow(), limit, skip_locked=False)]
        if not claimed:
            break
        progressed = 0
        people: set[str] = set()
        pending: list[int] = []
        for pk, employee_id, kind in claimed:
            if employee_id in people:
                continue  # one event per person per round: the next round claims the next one
            people.add(employee_id)
            if kind in BATCHED:
                pending.append(pk)
                continue
            if stopping():
                break
            progressed += urgent()
            progressed += _apply_one(db, ctx, pk, stats, skip_locked)
        while pending and not stopping():
            progressed += urgent()
            chunk, pending = pending[:size], pending[size:]
            started = time.monotonic()
            progressed += _apply_batch(db, ctx, chunk, stats, skip_locked, stopping)
            per_event = max(time.monotonic() - started, 1e-3) / len(chunk)
            size = max(1, min(BATCH_MAX, int(BATCH_SECONDS / per_event)))
        if progressed == 0:
            break
    # Pre-hire records, one transaction each: a hire that cannot be stored fails alone.
    if stopping():
        return stats
    with db.read() as session:
        future = [e.id for e in repository.future_hires_without_identity(session, utcnow(), limit)]
    for event_pk in future:
        if stopping():
            break
        _apply_one(db, ctx, event_pk, stats, skip_locked, _pre_hire(ctx))
    return stats
