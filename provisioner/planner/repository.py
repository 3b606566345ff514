"""Queries on stored plans."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.planner.models import Plan


def for_identity(session: Session, identity_id: str, limit: int = 20) -> Sequence[Plan]:
    return session.scalars(select(Plan).where(Plan.identity_id == identity_id)
                           .order_by(Plan.id.desc()).limit(limit)).all()


def get(session: Session, plan_id: int) -> Plan | None:
    return session.get(Plan, plan_id)
