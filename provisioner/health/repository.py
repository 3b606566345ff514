"""Bounded queries behind readiness and the scrape-time gauges: each reads only open work
(operations not finished, HR events still pending) through the indexes that lead with status,
never the history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from provisioner.identities.models import Identity
from provisioner.intake.models import EventStatus, HREvent
from provisioner.queue.models import Operation, OpStatus, Priority
from provisioner.queue.repository import OPEN


@dataclass(frozen=True, slots=True)
class Backlog:
    count: int
    oldest: datetime | None  # when the oldest item started waiting


_CLAIMED = Operation.claimed_by.is_not(None)  # never cleared: the operation was tried at least once
# Work scheduled for later (a leaver's account deleted 30 days after disabling) waits from its
# time, not from when it was planned; tried work waits from when it was planned.
_WAITING_SINCE = case((and_(~_CLAIMED, Operation.next_attempt_at > Operation.created_at), Operation.next_attempt_at),
                      else_=Operation.created_at)


def _waiting(now: datetime):
    return or_(_CLAIMED, Operation.next_attempt_at <= now)


def open_operations(session: Session, now: datetime) -> Backlog:
    """Open operations due or tried (scheduled work not yet due is not waiting), oldest first."""
    count, oldest = session.execute(select(func.count(), func.min(_WAITING_SINCE))
                                    .where(Operation.status.in_(OPEN), _waiting(now), ~_PARKED)).one()
    return Backlog(count, oldest)


# A manager link parked until the manager's account exists (HR may hire them weeks later, or
# never: the event carries an ``unknown_manager`` warning): not a stuck queue.
_PARKED = and_(Operation.kind == "set_manager", Operation.status == OpStatus.WAITING,
               Operation.depends_on_id.is_(None))


def dead_letters(session: Session) -> int:
    return session.scalar(select(func.count()).where(Operation.status == OpStatus.DEAD)) or 0


def failed_readbacks(session: Session) -> dict[str, int]:
    """Per target, leavers' read-backs dead-lettered because access remained after the last round."""
    rows = session.execute(select(Operation.target, func.count())
                           .where(Operation.status == OpStatus.DEAD, Operation.kind == "verify_revoked")
                           .group_by(Operation.target))
    return {target: n for target, n in rows}


def unverified_leavers(session: Session, now: datetime) -> Backlog:
    """Terminated people with revocation work (operations or read-backs) due and not finished,
    open or dead-lettered: their access is not proven gone."""
    unfinished = (*OPEN, OpStatus.DEAD)
    count, oldest = session.execute(
        select(func.count(func.distinct(Operation.identity_id)), func.min(_WAITING_SINCE))
        .join(Identity, Identity.id == Operation.identity_id)
        .where(Operation.status.in_(unfinished), Operation.priority < Priority.NORMAL,
               Identity.state == "terminated", _waiting(now))).one()
    return Backlog(count, oldest)


def due_hr_events(session: Session, now: datetime) -> Backlog:
    """Pending HR events whose time has come; each has waited since it was both received and due."""
    due_since = case((HREvent.effective_at > HREvent.received_at, HREvent.effective_at),
                     else_=HREvent.received_at)
    count, oldest = session.execute(select(func.count(), func.min(due_since)).where(
        HREvent.status == EventStatus.PENDING, HREvent.effective_at <= now)).one()
    return Backlog(count, oldest)


def operation_counts(session: Session) -> dict[str, int]:
    """Operations by status (the whole table: the existing provisioner_queue_operations gauge)."""
    rows = session.execute(select(Operation.status, func.count()).group_by(Operation.status))
    return {status: n for status, n in rows}


def operations_by_target(session: Session) -> dict[str, dict[str, int]]:
    """Operations per target and status (the console's queue health)."""
    rows = session.execute(select(Operation.target, Operation.status, func.count())
                           .group_by(Operation.target, Operation.status))
    out: dict[str, dict[str, int]] = {}
    for target, status, n in rows:
        out.setdefault(target, {})[status] = n
    return out


def hr_events_by_status(session: Session, status: str) -> int:
    return session.scalar(select(func.count()).select_from(HREvent).where(HREvent.status == status)) or 0


def unverified_leaver_ids(session: Session, now: datetime, limit: int = 500) -> list[str]:
    """The identities :func:`unverified_leavers` counts (the console's list behind the number)."""
    unfinished = (*OPEN, OpStatus.DEAD)
    return list(session.scalars(
        select(func.distinct(Operation.identity_id)).join(Identity, Identity.id == Operation.identity_id)
        .where(Operation.status.in_(unfinished), Operation.priority < Priority.NORMAL,
               Identity.state == "terminated", _waiting(now)).limit(limit)))


def hr_events_with_status(session: Session, status: str, limit: int = 200) -> Sequence[HREvent]:
    """HR events of one status, newest first (the console's rejected events)."""
    return session.scalars(select(HREvent).where(HREvent.status == status)
                           .order_by(HREvent.received_at.desc(), HREvent.id.desc()).limit(limit)).all()
