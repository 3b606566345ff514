"""Queries for policy rollouts: the rollout records, and the whole population's known state in a
handful of bulk queries (never one query per person)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from provisioner.identities.models import Identity, TargetAccount, TargetMembership
from provisioner.queue.models import Operation, OpStatus
from provisioner.rollouts.models import PolicyRollout, RolloutStatus
from provisioner.targets.contract import OpKind

OPEN = (OpStatus.WAITING, OpStatus.PENDING, OpStatus.RUNNING)
_STREAM = 2000  # rows fetched per round trip when reading the population


# -- rollout records ---------------------------------------------------------------------------
def latest(session: Session, status: str | None = None) -> PolicyRollout | None:
    stmt = select(PolicyRollout).order_by(PolicyRollout.id.desc()).limit(1)
    if status is not None:
        stmt = stmt.where(PolicyRollout.status == status)
    return session.scalar(stmt)


def held(session: Session, fingerprint: str) -> PolicyRollout | None:
    """The newest rollout of this policy set still waiting for approval."""
    return session.scalar(select(PolicyRollout).where(
        PolicyRollout.fingerprint == fingerprint, PolicyRollout.status == RolloutStatus.AWAITING_APPROVAL)
        .order_by(PolicyRollout.id.desc()).limit(1))


def approved(session: Session, fingerprint: str) -> PolicyRollout | None:
    """A rollout of this set an approver approved whose re-plan has not finished."""
    return session.scalar(select(PolicyRollout).where(
        PolicyRollout.fingerprint == fingerprint, PolicyRollout.status == RolloutStatus.APPROVED)
        .order_by(PolicyRollout.id.desc()).limit(1))


def rejected(session: Session, fingerprint: str, previous: str | None) -> PolicyRollout | None:
    """A rejection of this set made against the same applied set: it still stands."""
    return session.scalar(select(PolicyRollout).where(
        PolicyRollout.fingerprint == fingerprint, PolicyRollout.status == RolloutStatus.REJECTED,
        PolicyRollout.previous_fingerprint.is_(None) if previous is None
        else PolicyRollout.previous_fingerprint == previous).order_by(PolicyRollout.id.desc()).limit(1))


def get(session: Session, rollout_id: int, *, lock: bool = False) -> PolicyRollout | None:
    stmt = select(PolicyRollout).where(PolicyRollout.id == rollout_id)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def pending(session: Session) -> Sequence[PolicyRollout]:
    """Rollouts waiting for an approver (metrics, listings)."""
    return session.scalars(select(PolicyRollout).where(PolicyRollout.status == RolloutStatus.AWAITING_APPROVAL)
                           .order_by(PolicyRollout.id)).all()


def supersede_held(session: Session, fingerprint: str, note: str) -> int:
    """Held rollouts of other policy sets: a newer set replaced them before approval."""
    result = session.execute(update(PolicyRollout).where(
        PolicyRollout.status == RolloutStatus.AWAITING_APPROVAL, PolicyRollout.fingerprint != fingerprint)
        .values(status=RolloutStatus.SUPERSEDED, note=note))
    return result.rowcount or 0


def recent(session: Session, limit: int = 20, status: str | None = None) -> Sequence[PolicyRollout]:
    stmt = select(PolicyRollout)
    if status is not None:
        stmt = stmt.where(PolicyRollout.status == status)
    return session.scalars(stmt.order_by(PolicyRollout.id.desc()).limit(limit)).all()


# -- the population ------------------------------------------------------------------------------
def population(session: Session) -> Iterator[Row[Any]]:
    """Every identity as a plain row (its columns as attributes, as ``attributes_of`` reads
    them; no ORM objects to build for a whole company), streamed in batches."""
    yield from session.execute(select(Identity.__table__).execution_options(yield_per=_STREAM))


def account_keys(session: Session) -> set[tuple[str, str]]:
    """(identity id, target) of every account the service knows."""
    rows = session.execute(select(TargetAccount.identity_id, TargetAccount.target)
                           .execution_options(yield_per=_STREAM))
    return {(r[0], r[1]) for r in rows}


def known_memberships(session: Session) -> dict[tuple[str, str], set[str]]:
    """(identity id, target) -> the groups the service knows the person is in."""
    out: dict[tuple[str, str], set[str]] = {}
    rows = session.execute(select(TargetMembership.identity_id, TargetMembership.target, TargetMembership.group_key)
                           .execution_options(yield_per=_STREAM))
    for identity_id, target, group in rows:
        out.setdefault((identity_id, target), set()).add(group)
    return out


def open_membership_ops(session: Session) -> list[tuple[str, str, str, str]]:
    """(identity id, target, kind, group) of membership changes still to be made, oldest first:
    what the service is already on its way to."""
    rows = session.execute(select(Operation.identity_id, Operation.target, Operation.kind, Operation.group_key)
                           .where(Operation.status.in_((*OPEN, OpStatus.HELD)),  # held: waits for an approver
                                  Operation.kind.in_((OpKind.ADD_MEMBER.value, OpKind.REMOVE_MEMBER.value)))
                           .order_by(Operation.id))
    return [(r[0], r[1], r[2], r[3]) for r in rows if r[3] is not None]


def lock_identities(session: Session, identity_ids: Sequence[str]) -> list[Identity]:
    """Lock a chunk of people in one statement, in id order (as one HR event locks one person)."""
    return list(session.scalars(select(Identity).where(Identity.id.in_(list(identity_ids)))
                                .order_by(Identity.id).with_for_update()))


def add(session: Session, row: PolicyRollout) -> PolicyRollout:
    session.add(row)
    session.flush()
    return row


def mark_applied(row: PolicyRollout, now: datetime, decided_by: str) -> None:
    row.status, row.applied_at, row.decided_by = RolloutStatus.APPLIED, now, decided_by
