"""Queries behind the revocation evidence."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.evidence.models import RevocationCheck
from provisioner.planner.models import Plan


def plan_for_trigger(session: Session, trigger: str) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.trigger == trigger).order_by(Plan.id).limit(1))


def leaver_plan_ids(session: Session, plan: Plan) -> list[int]:
    """The termination's plan and the leaver plans that followed it for the same person (the
    worker converging after a late create, reconciliation), up to the next plan of another kind
    (a rehire)."""
    later = session.execute(select(Plan.id, Plan.kind).where(Plan.identity_id == plan.identity_id,
                                                            Plan.id > plan.id).order_by(Plan.id)).tuples()
    ids = [plan.id]
    for plan_id, kind in later:
        if kind != "leaver":
            break
        ids.append(plan_id)
    return ids


def checks_for_plans(session: Session, plan_ids: Sequence[int]) -> Sequence[RevocationCheck]:
    return session.scalars(select(RevocationCheck).where(RevocationCheck.plan_id.in_(list(plan_ids)))
                           .order_by(RevocationCheck.id)).all()
