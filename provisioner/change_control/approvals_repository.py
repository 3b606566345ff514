"""Queries on access requests (approvals and separation-of-duties flags)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from provisioner import limits
from provisioner.change_control.models import LIVE, AccessRequest, RequestKind, RequestStatus
from provisioner.db import insert_rows
from provisioner.identities.models import Identity, TargetMembership

_CHUNK = 500
_INT_MAX = limits.ROW_ID_MAX  # ids are INTEGER: a larger one names nothing (PostgreSQL would refuse it)


def live_for(session: Session, identity_ids: Sequence[str]) -> list[AccessRequest]:
    """The decisions the planner reads for these people (history that no longer counts left out)."""
    out: list[AccessRequest] = []
    ids = list(identity_ids)
    for start in range(0, len(ids), _CHUNK):
        out.extend(session.scalars(select(AccessRequest).where(
            AccessRequest.identity_id.in_(ids[start:start + _CHUNK]), AccessRequest.status.in_(LIVE))
            .order_by(AccessRequest.id)).all())
    return out


def insert(session: Session, rows: list[dict]) -> None:
    insert_rows(session, AccessRequest, rows)


def get_many(session: Session, ids: Iterable[int], *, lock: bool = False) -> dict[int, AccessRequest]:
    stmt = select(AccessRequest).where(AccessRequest.id.in_(list(ids)))
    if lock:
        stmt = stmt.with_for_update()
    return {r.id: r for r in session.scalars(stmt)}


def listing(session: Session, *, status: str | None = RequestStatus.PENDING, kind: str | None = None,
            identity_id: str | None = None, rule: str | None = None, ids: Iterable[int] | None = None,
            lock: bool = False, limit: int = 500) -> list[tuple[AccessRequest, Identity]]:
    stmt = select(AccessRequest, Identity).join(Identity, Identity.id == AccessRequest.identity_id)
    if status is not None:
        stmt = stmt.where(AccessRequest.status == status)
    if kind is not None:
        stmt = stmt.where(AccessRequest.kind == kind)
    if identity_id is not None:
        stmt = stmt.where(AccessRequest.identity_id == identity_id)
    if rule is not None:
        stmt = stmt.where(AccessRequest.rule == rule)
    if ids is not None:
        stmt = stmt.where(AccessRequest.id.in_([i for i in ids if 0 < i <= _INT_MAX]))
    stmt = stmt.order_by(AccessRequest.id).limit(limit)
    if lock:
        stmt = stmt.with_for_update(of=AccessRequest)
    return [(r, i) for r, i in session.execute(stmt).all()]


def due_to_expire(session: Session, now: datetime, limit: int = 500) -> list[AccessRequest]:
    return list(session.scalars(select(AccessRequest).where(
        AccessRequest.status == RequestStatus.APPROVED, AccessRequest.expires_at.is_not(None),
        AccessRequest.expires_at <= now).order_by(AccessRequest.expires_at).limit(limit).with_for_update()))


def pending_stats(session: Session) -> dict[str, tuple[int, datetime | None]]:
    """Per kind: how many wait for a decision and since when the oldest waits."""
    rows = session.execute(select(AccessRequest.kind, func.count(), func.min(AccessRequest.created_at))
                           .where(AccessRequest.status == RequestStatus.PENDING).group_by(AccessRequest.kind))
    out = {kind: (0, None) for kind in (RequestKind.APPROVAL, RequestKind.SOD)}
    out.update({kind: (count, oldest) for kind, count, oldest in rows})
    return out


def holders(session: Session, keys: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(identity_id, target, group) of every known membership in these groups."""
    if not keys:
        return []
    return [tuple(r) for r in session.execute(
        select(TargetMembership.identity_id, TargetMembership.target, TargetMembership.group_key)
        .where(tuple_(TargetMembership.target, TargetMembership.group_key).in_(list(keys))))]


def identities_by_id(session: Session, ids: Iterable[str]) -> dict[str, Identity]:
    ids = list(set(ids))
    out: dict[str, Identity] = {}
    for start in range(0, len(ids), _CHUNK):
        out.update({i.id: i for i in session.scalars(select(Identity).where(Identity.id.in_(ids[start:start + _CHUNK])))})
    return out
