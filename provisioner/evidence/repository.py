"""Queries behind the revocation evidence and the incidents after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import takewhile

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from provisioner.evidence.models import RevocationCheck, RevocationIncident
from provisioner.planner.models import Plan
from provisioner.queue.models import Operation

RECONCILE_TRIGGER = "reconcile"


def plan_for_trigger(session: Session, trigger: str) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.trigger == trigger).order_by(Plan.id).limit(1))


@dataclass
class RevocationPlans:
    """The plans that make up one termination's own revocation, and where its story ends."""

    plan_ids: list[int]
    until: datetime | None  # the next plan of another kind (a rehire): incidents after it are not this one's
    # (plan, target) pairs of a merged plan whose target was verified before that plan was made:
    # that part of the plan is after the revocation (a later read-back), not the revocation.
    left_out: set[tuple[int, str]] = field(default_factory=set)

    def covers(self, plan_id: int | None, target: str) -> bool:
        return plan_id in self.plan_ids and (plan_id, target) not in self.left_out


def _verified_targets(session: Session, plan_ids: Sequence[int], left_out: set[tuple[int, str]],
                      at: datetime) -> set[str]:
    rows = session.execute(select(RevocationCheck.plan_id, RevocationCheck.target).where(
        RevocationCheck.plan_id.in_(list(plan_ids)), RevocationCheck.verified.is_(True),
        RevocationCheck.checked_at <= at)).tuples()
    return {target for plan_id, target in rows if (plan_id, target) not in left_out}


def revocation_plans(session: Session, plan: Plan) -> RevocationPlans:
    """The termination's plan and the leaver plans that followed it as part of the same
    revocation (the worker converging after a late create or link, a correction from HR), each
    for the targets not yet verified when it was made. Merging stops at reconciliation's first
    plan (drift after the revocation is an incident, never this revocation) and at the first plan
    made when every target it touches was verified already (a later read-back); a plan of
    another kind (a rehire) ends the story, and the period whose incidents belong to it."""
    later = session.execute(select(Plan.id, Plan.kind, Plan.trigger, Plan.created_at)
                            .where(Plan.identity_id == plan.identity_id, Plan.id > plan.id)
                            .order_by(Plan.id)).tuples().all()
    until = next((created for _, kind, _, created in later if kind != "leaver"), None)
    leavers = list(takewhile(lambda row: row[1] == "leaver", later))
    targets_of: dict[int, set[str]] = {}
    for plan_id, target in session.execute(select(Operation.plan_id, Operation.target).distinct().where(
            Operation.plan_id.in_([row[0] for row in leavers]))).tuples():
        targets_of.setdefault(plan_id, set()).add(target)
    ids, left_out = [plan.id], set()
    for plan_id, _, trigger, created_at in leavers:
        if trigger == RECONCILE_TRIGGER:
            break
        touched = targets_of.get(plan_id, set())
        if not touched:
            continue  # nothing to do in any target: neither part of it nor an end to it
        done = _verified_targets(session, ids, left_out, created_at)
        if touched <= done:
            break
        ids.append(plan_id)
        left_out |= {(plan_id, target) for target in touched & done}
    return RevocationPlans(ids, until, left_out)


def checks_for_plans(session: Session, plan_ids: Sequence[int]) -> Sequence[RevocationCheck]:
    return session.scalars(select(RevocationCheck).where(RevocationCheck.plan_id.in_(list(plan_ids)))
                           .order_by(RevocationCheck.id)).all()


def latest_checks(session: Session, identity_id: str) -> dict[str, RevocationCheck]:
    """The person's latest read-back in each target (target -> check)."""
    rows = session.scalars(select(RevocationCheck).where(RevocationCheck.identity_id == identity_id)
                           .order_by(RevocationCheck.checked_at, RevocationCheck.id)).all()
    return {check.target: check for check in rows}


def incidents_between(session: Session, identity_id: str, since: datetime,
                      until: datetime | None) -> Sequence[RevocationIncident]:
    query = select(RevocationIncident).where(RevocationIncident.identity_id == identity_id,
                                             RevocationIncident.detected_at >= since)
    if until is not None:
        query = query.where(RevocationIncident.detected_at < until)
    return session.scalars(query.order_by(RevocationIncident.detected_at, RevocationIncident.id)).all()


# -- what the worker's read-back asks -------------------------------------------------------------

def verified_before(session: Session, identity_id: str, target: str, plan_id: int) -> RevocationCheck | None:
    """The first verified read-back of this person in this target that came before ``plan_id``
    was made, since their last plan of another kind (a rehire starts a new story): when there
    is one, access found by ``plan_id``'s read-back came back after the revocation."""
    created = session.scalar(select(Plan.created_at).where(Plan.id == plan_id))
    if created is None:
        return None
    boundary = session.scalar(select(func.max(Plan.id)).where(
        Plan.identity_id == identity_id, Plan.kind != "leaver", Plan.id < plan_id)) or 0
    return session.scalar(
        select(RevocationCheck)
        .where(RevocationCheck.identity_id == identity_id, RevocationCheck.target == target,
               RevocationCheck.verified.is_(True), RevocationCheck.plan_id > boundary,
               RevocationCheck.plan_id < plan_id, RevocationCheck.checked_at <= created)
        .order_by(RevocationCheck.checked_at, RevocationCheck.id).limit(1))


def open_incidents(session: Session, identity_id: str, target: str, plan_id: int | None) -> Sequence[RevocationIncident]:
    """Incidents of this person in this target not fixed yet, of ``plan_id`` or an earlier plan
    (or none): a verified read-back of ``plan_id`` proves them over."""
    query = select(RevocationIncident).where(RevocationIncident.identity_id == identity_id,
                                             RevocationIncident.target == target,
                                             RevocationIncident.fixed_at.is_(None))
    if plan_id is not None:
        query = query.where(or_(RevocationIncident.plan_id.is_(None), RevocationIncident.plan_id <= plan_id))
    return session.scalars(query.order_by(RevocationIncident.id)).all()
