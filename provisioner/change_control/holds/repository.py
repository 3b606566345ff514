"""Queries for mass-change holds: the sliding window, the hold sets and their operations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from provisioner.change_control.holds.models import HoldSet, HoldStatus
from provisioner.identities.models import Identity, TargetAccount
from provisioner.queue.models import Operation, OpStatus
from provisioner.targets.contract import OpKind

DESTRUCTIVE = (OpKind.DISABLE_ACCOUNT.value, OpKind.DELETE_ACCOUNT.value, OpKind.REMOVE_MEMBER.value)
# Held with a person's destructive work on the target: ending sessions and the read-back that
# proves no access remains would otherwise run before (or without) the disable they follow.
COMPANIONS = (OpKind.REVOKE_SESSIONS.value, OpKind.VERIFY_REVOKED.value)
UNRUN = (OpStatus.PENDING, OpStatus.WAITING)


def lock_window(session: Session, target: str, cause: str) -> None:
    """PostgreSQL: planners screening the same (target, cause) take turns until they commit, so
    two batches never each pass under a threshold they cross together."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                        {"name": f"provisioner.hold:{target}:{cause}"})


def open_set(session: Session, target: str, cause: str, *, lock: bool = False) -> HoldSet | None:
    stmt = select(HoldSet).where(HoldSet.target == target, HoldSet.cause == cause, HoldSet.status == HoldStatus.HELD)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def window_people(session: Session, target: str, cause: str, since: datetime, open_id: int | None) -> set[str]:
    """People with destructive work of this cause on this target since ``since`` that counts:
    not withdrawn, and not in a set an approver already decided (ix_operations_cause)."""
    counted = Operation.hold_id.is_(None) if open_id is None else or_(Operation.hold_id.is_(None),
                                                                       Operation.hold_id == open_id)
    return set(session.scalars(select(Operation.identity_id).distinct().where(
        Operation.cause == cause, Operation.target == target, Operation.created_at >= since,
        Operation.kind.in_(DESTRUCTIVE), Operation.status != OpStatus.CANCELLED, counted)))


def open_holds_of(session: Session, identity_ids: Sequence[str]) -> dict[tuple[str, str], tuple[int, str]]:
    """(identity, target) -> (hold id, cause) of these people's work in open hold sets (held, or
    just withdrawn by the new plan being screened)."""
    ids, out = sorted(set(identity_ids)), {}
    for start in range(0, len(ids), 500):
        for identity_id, target, hold_id, cause in session.execute(
                select(Operation.identity_id, Operation.target, HoldSet.id, HoldSet.cause)
                .join(HoldSet, HoldSet.id == Operation.hold_id)
                .where(Operation.identity_id.in_(ids[start:start + 500]), HoldSet.status == HoldStatus.HELD)
                .distinct()).tuples():
            out[(identity_id, target)] = (hold_id, cause)
    return out


def population(session: Session, target: str) -> int:
    """The target's managed population: the accounts the service knows there."""
    return session.scalar(select(func.count()).select_from(TargetAccount).where(TargetAccount.target == target)) or 0


def sweep(session: Session, hold: HoldSet, since: datetime, now: datetime) -> int:
    """Hold the not-yet-tried work of this cause and target planned in the window before the
    threshold was crossed: of the people whose destructive work is due and has not run yet (a
    deletion deferred for weeks after a disable that ran is not part of the wave)."""
    base = and_(Operation.cause == hold.cause, Operation.target == hold.target, Operation.created_at >= since,
                Operation.hold_id.is_(None), Operation.status.in_(UNRUN), Operation.attempts == 0)
    people = list(session.scalars(select(Operation.identity_id).distinct().where(
        base, Operation.kind.in_(DESTRUCTIVE), Operation.next_attempt_at <= now)))
    held = 0
    skip_locked = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(people), 500):
        # Rows another planner is withdrawing right now are skipped, not waited for (it would
        # be waiting for this screen's lock: a deadlock); its new plan is screened after this one.
        stmt = select(Operation.id).where(base, Operation.identity_id.in_(people[start:start + 500]))
        ids = list(session.scalars(stmt.with_for_update(skip_locked=True) if skip_locked else stmt))
        if ids:
            result = session.execute(update(Operation).where(Operation.id.in_(ids))
                                     .values(status=OpStatus.HELD, hold_id=hold.id)
                                     .execution_options(synchronize_session=False))
            held += result.rowcount or 0
    return held


def add(session: Session, hold: HoldSet) -> HoldSet:
    session.add(hold)
    session.flush()
    return hold


def get(session: Session, hold_id: int, *, lock: bool = False) -> HoldSet | None:
    stmt = select(HoldSet).where(HoldSet.id == hold_id)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def listing(session: Session, status: str | None, limit: int) -> Sequence[HoldSet]:
    stmt = select(HoldSet)
    if status is not None:
        stmt = stmt.where(HoldSet.status == status)
    return session.scalars(stmt.order_by(HoldSet.id.desc()).limit(limit)).all()


def operations(session: Session, hold_id: int, status: str | None = None) -> list[tuple[Operation, Identity]]:
    stmt = (select(Operation, Identity).join(Identity, Identity.id == Operation.identity_id)
            .where(Operation.hold_id == hold_id).order_by(Operation.id))
    if status is not None:
        stmt = stmt.where(Operation.status == status)
    return [(op, person) for op, person in session.execute(stmt).tuples()]


def decided_with_held(session: Session, limit: int = 100) -> list[HoldSet]:
    """Decided (released or cancelled) sets that still have operations ``held``: work a plan put
    in the set while a concurrent decision was committing."""
    ids = select(Operation.hold_id).where(Operation.status == OpStatus.HELD, Operation.hold_id.is_not(None))
    return list(session.scalars(select(HoldSet).where(HoldSet.id.in_(ids), HoldSet.status != HoldStatus.HELD)
                                .order_by(HoldSet.id).limit(limit)))


def held_counts(session: Session, hold_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Per hold set: (held operations, people with held operations)."""
    if not hold_ids:
        return {}
    rows = session.execute(select(Operation.hold_id, func.count(), func.count(Operation.identity_id.distinct()))
                           .where(Operation.hold_id.in_(list(hold_ids)), Operation.status == OpStatus.HELD)
                           .group_by(Operation.hold_id)).tuples()
    return {hold_id: (ops, people) for hold_id, ops, people in rows}


@dataclass
class Dependencies:
    """Held operations' dependencies: the succeeded ones, and those that never will (by id)."""

    succeeded: set[int] = field(default_factory=set)
    failed: dict[int, Operation] = field(default_factory=dict)  # dead-lettered or withdrawn


def ended_dependencies(session: Session, op_ids: Sequence[int]) -> Dependencies:
    ids, out = sorted({i for i in op_ids if i is not None}), Dependencies()
    for start in range(0, len(ids), 500):
        for op in session.scalars(select(Operation).where(
                Operation.id.in_(ids[start:start + 500]),
                Operation.status.in_((OpStatus.SUCCEEDED, OpStatus.DEAD, OpStatus.CANCELLED)))):
            if op.status == OpStatus.SUCCEEDED:
                out.succeeded.add(op.id)
            else:
                out.failed[op.id] = op
    return out


def held_for_identity(session: Session, identity_id: str) -> list[tuple[Operation, HoldSet]]:
    """A person's held operations and their sets (``provisioner plan``, the person's view)."""
    return [(op, hold) for op, hold in session.execute(
        select(Operation, HoldSet).join(HoldSet, HoldSet.id == Operation.hold_id)
        .where(Operation.identity_id == identity_id, Operation.status == OpStatus.HELD)
        .order_by(Operation.id)).tuples()]


def open_sets_summary(session: Session) -> list[tuple[str, str, int, datetime, int]]:
    """(target, cause, hold id, opened at, held operations) of every open set (metrics)."""
    sets = session.scalars(select(HoldSet).where(HoldSet.status == HoldStatus.HELD)).all()
    counts = held_counts(session, [h.id for h in sets])
    return [(h.target, h.cause, h.id, h.opened_at, counts.get(h.id, (0, 0))[0]) for h in sets]
