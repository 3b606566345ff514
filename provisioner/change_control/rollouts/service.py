"""Approving and rejecting held policy rollouts, and reading their diff before deciding.

A held rollout (``rollouts.service.decide``: more people than ``policy_rollout_max_auto``)
stores its whole population-wide diff. :func:`view` reads it per target, group or person.
:func:`approve` records the approver's decision (status ``approved``, who, when, comment) in one
transaction and then rolls the set out (the re-plan runs; a process that dies half-way finds the
approved rollout at its next start and finishes it). :func:`reject` records the refusal; the
rollout service then never applies that policy set against the same applied set again
(``rollouts.repository.rejected``): a new policy change (another fingerprint) is needed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.planner.service import PlanningContext
from provisioner.rollouts import repository
from provisioner.rollouts.fingerprint import fingerprint
from provisioner.rollouts.models import PolicyRollout, RolloutStatus
from provisioner.rollouts.schemas import RolloutResult
from provisioner.rollouts.service import roll_out
from provisioner.settings import Settings


class RolloutDecisionError(ValueError):
    """``status``: the HTTP answer (404 unknown rollout, 409 not awaiting or another policy set loaded)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def summary(row: PolicyRollout) -> dict[str, Any]:
    return {"id": row.id, "fingerprint": row.fingerprint, "previous_fingerprint": row.previous_fingerprint,
            "status": row.status, "trigger": row.trigger, "counts": row.counts or {},
            "created_at": row.created_at, "applied_at": row.applied_at, "decided_by": row.decided_by,
            "comment": row.note}


def view(row: PolicyRollout, *, target: str | None = None, group: str | None = None,
         person: str | None = None) -> dict[str, Any]:
    """The rollout with its diff, narrowed to one target, one group (in every target) or one
    person (the groups they gain and lose, by target)."""
    diff: dict[str, Any] = row.diff or {}
    if target is not None:
        diff = {t: g for t, g in diff.items() if t == target}
    if group is not None:
        diff = {t: {name: g for name, g in groups.items() if name == group} for t, groups in diff.items()}
        diff = {t: groups for t, groups in diff.items() if groups}
    out = {**summary(row), "diff": diff}
    if person is not None:
        changes: dict[str, dict[str, list[str]]] = {}
        for t, groups in diff.items():
            for name, g in groups.items():
                for change in ("gain", "lose"):
                    if any(p.get("employee_id") == person for p in g.get(change, [])):
                        changes.setdefault(t, {"gain": [], "lose": []})[change].append(name)
        out["diff"] = {}
        out["person"] = {"employee_id": person, "targets": changes}
    return out


def _awaiting(session: Session, rollout_id: int) -> PolicyRollout:
    row = repository.get(session, rollout_id, lock=True)
    if row is None:
        raise RolloutDecisionError(404, f"no policy rollout {rollout_id} (see 'provisioner rollouts list')")
    if row.status != RolloutStatus.AWAITING_APPROVAL:
        raise RolloutDecisionError(409, f"policy rollout {rollout_id} is {row.status}"
                                        f"{' by ' + row.decided_by if row.decided_by else ''}: only a rollout "
                                        "awaiting approval can be approved or rejected")
    return row


def approve(db: Database, ctx: PlanningContext, settings: Settings, rollout_id: int, by: str,
            comment: str | None) -> RolloutResult:
    """Record the approval, then apply the rollout (everyone it affects is re-planned). The
    policies loaded in ``ctx`` must be the set that was held."""
    loaded = fingerprint(ctx.policies, ctx.targets)
    with db.transaction() as session:
        row = _awaiting(session, rollout_id)
        if row.fingerprint != loaded:
            raise RolloutDecisionError(409, f"policy rollout {rollout_id} is policy set {row.fingerprint[:12]} but "
                                            f"this process has {loaded[:12]} loaded: reload the policies "
                                            "('provisioner policy reload') and decide on the rollout that makes")
        row.status, row.decided_by, row.note = RolloutStatus.APPROVED, by, comment
        append(session, "policy.rollout.approved", row.fingerprint, rollout_id=row.id, fingerprint=row.fingerprint,
               decided_by=by, comment=comment, at=utcnow().isoformat(), counts=row.counts)
    return roll_out(db, ctx, settings, trigger="approved")


def reject(session: Session, rollout_id: int, by: str, comment: str | None) -> PolicyRollout:
    row = _awaiting(session, rollout_id)
    row.status, row.decided_by, row.note = RolloutStatus.REJECTED, by, comment
    append(session, "policy.rollout.rejected", row.fingerprint, rollout_id=row.id, fingerprint=row.fingerprint,
           previous_fingerprint=row.previous_fingerprint, decided_by=by, comment=comment,
           at=utcnow().isoformat(), counts=row.counts)
    return row
