"""Queries behind the revocation evidence."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.evidence.models import RevocationCheck
from provisioner.planner.models import Plan


def plan_for_trigger(session: Session, trigger: str) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.trigger == trigger).order_by(Plan.id).limit(1))


def checks_for_plan(session: Session, plan_id: int) -> Sequence[RevocationCheck]:
    return session.scalars(select(RevocationCheck).where(RevocationCheck.plan_id == plan_id)
                           .order_by(RevocationCheck.id)).all()
