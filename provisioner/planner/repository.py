"""Queries on stored plans."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner.planner.models import Plan


def for_identity(session: Session, identity_id: str, limit: int = 20) -> Sequence[Plan]:
    return session.scalars(select(Plan).where(Plan.identity_id == identity_id)
                           .order_by(Plan.id.desc()).limit(limit)).all()


def get(session: Session, plan_id: int) -> Plan | None:
    return session.get(Plan, plan_id)


def latest_plan_ids(session: Session, identity_ids: list[str]) -> dict[str, int]:
    ids = list(set(identity_ids))
    out: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Plan.identity_id, func.max(Plan.id))
                               .where(Plan.identity_id.in_(ids[start:start + 500])).group_by(Plan.identity_id))
        out.update({r[0]: r[1] for r in rows})
    return out
