"""Policy rollouts: when the loaded policy set changes, everyone it affects is re-planned.

A policy set is known by its fingerprint (``rollouts.fingerprint``). On start (``provisioner
serve``, ``provisioner worker``, the demo harness) and on reload (``provisioner policy reload``,
SIGHUP to ``provisioner serve``) :func:`roll_out` compares it with the last applied set; if it is
new, it computes the population-wide diff (``rollouts.diff``), asks :func:`decide` whether to
apply it now or hold it for approval, re-plans the affected people in chunks (each chunk one
transaction, planned in bulk) and records the set in ``policy_rollouts`` and the audit trail. One process at a time
(``Database.named_lock``), so processes starting together roll a set out once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.change_control.holds.models import Cause
from provisioner.clock import utcnow
from provisioner.db import Database, NamedLock
from provisioner.planner.service import PlanningContext, PlanRequest, plan_many
from provisioner.policies.loader import load_policies
from provisioner.rollouts import repository
from provisioner.rollouts.diff import population_diff
from provisioner.rollouts.fingerprint import fingerprint, policy_files
from provisioner.rollouts.models import PolicyRollout, RolloutStatus
from provisioner.rollouts.schemas import DIFF_PEOPLE_CAP, PolicyDriftItem, PopulationDiff, RolloutResult
from provisioner.settings import Settings

log = logging.getLogger(__name__)

LOCK_NAME = "policy-rollout"
LOCK_TIMEOUT = 600.0  # another process rolling a set out: wait for it, then find the set applied
CHUNK = 500  # people re-planned per transaction, in bulk (planner.service.plan_many)


def policy_drift(session: Session, ctx: PlanningContext) -> list[PolicyDriftItem]:
    """Everyone whose known (or already planned) memberships differ from what the policies in
    ``ctx`` grant right now: one item per person, target and group."""
    return population_diff(session, ctx).items


def decide(diff: PopulationDiff, settings: Settings, previous: str | None = None, *,
           approved: bool = False) -> str:
    """Apply a rollout now, or hold it for approval: the one place this is decided.

    ``policy_rollout_max_auto`` (default 50; None: no limit) is the most people a rollout may
    re-plan without approval. Above it the rollout waits for an approver
    (``provisioner rollouts approve``, ``POST /change-control/rollouts/{id}/approve``); raising
    the limit and restarting also releases it. The first set a database sees (no previous set)
    and a set an approver approved apply at once.
    """
    limit = settings.policy_rollout_max_auto
    if approved or previous is None or limit is None or len(diff.affected) <= limit:
        return RolloutStatus.APPLIED
    return RolloutStatus.AWAITING_APPROVAL


def roll_out(db: Database, ctx: PlanningContext, settings: Settings, *, trigger: str,
             files: dict[str, str] | None = None,
             should_stop: Callable[[], bool] | None = None) -> RolloutResult:
    """Roll the policy set in ``ctx`` out to the population, if it was not applied already."""
    fp = fingerprint(ctx.policies, ctx.targets)
    if files is None:
        files = policy_files(Path(settings.policies_dir))
    lock = db.named_lock(LOCK_NAME)
    if not _acquire(lock, should_stop):
        if should_stop is not None and should_stop():
            return RolloutResult(fp, None, "stopped", trigger)
        log.warning("policy rollout: another process held the rollout lock for %.0f s; "
                    "this set (%s) is rolled out at the next start or reload", LOCK_TIMEOUT, fp[:12])
        return RolloutResult(fp, None, "busy", trigger)
    try:
        return _roll_out_locked(db, ctx, settings, fp, trigger, files, should_stop)
    finally:
        lock.release()


def _acquire(lock: NamedLock, should_stop: Callable[[], bool] | None) -> bool:
    """Wait for the rollout lock up to LOCK_TIMEOUT, giving up at once when the process stops."""
    deadline = time.monotonic() + LOCK_TIMEOUT
    while time.monotonic() < deadline:
        if lock.acquire(min(1.0, max(0.0, deadline - time.monotonic()))):
            return True
        if should_stop is not None and should_stop():
            return False
    return False


def _roll_out_locked(db: Database, ctx: PlanningContext, settings: Settings, fp: str, trigger: str,
                     files: dict[str, str], should_stop: Callable[[], bool] | None) -> RolloutResult:
    started = utcnow()
    with db.read() as session:
        applied = repository.latest(session, RolloutStatus.APPLIED)
        previous = applied.fingerprint if applied is not None else None
        if previous == fp:
            return RolloutResult(fp, previous, "unchanged", trigger)
        if repository.rejected(session, fp, previous) is not None:
            # An approver rejected this set against the set applied now: only a policy change
            # (another fingerprint) makes a new rollout.
            return RolloutResult(fp, previous, "rejected", trigger)
        held = repository.held(session, fp)
        approved = repository.approved(session, fp)
        diff = population_diff(session, ctx)
    counts = diff.counts()
    status = decide(diff, settings, previous, approved=approved is not None)
    result = RolloutResult(fp, previous, "applied" if status == RolloutStatus.APPLIED else "held",
                           trigger, counts)
    # Re-plans of a rollout an approver read are never held again as a mass change.
    cause = Cause.REVIEWED_ROLLOUT if approved is not None else None
    if status == RolloutStatus.AWAITING_APPROVAL:
        if held is None:
            with db.transaction() as session:
                repository.supersede_held(session, fp, f"replaced by policy set {fp}")
                row = _record(session, fp, previous, status, trigger, diff, files, started, cap=None)
                result.rollout_id = row.id
            log.warning("policy rollout held for approval: %d people affected, more than "
                        "policy_rollout_max_auto=%s (policy set %s)", len(diff.affected),
                        settings.policy_rollout_max_auto, fp[:12], extra={"alert": "policy_rollout_held"})
        else:
            result.rollout_id = held.id
        return result
    for start in range(0, len(diff.affected), CHUNK):
        if should_stop is not None and should_stop():
            # Nothing is recorded: the next start finds this set new again, and the diff
            # (which counts what is already planned) holds only the people not yet re-planned.
            result.outcome = "stopped"
            return result
        with db.transaction() as session:
            people = repository.lock_identities(session, diff.affected[start:start + CHUNK])
            plan_many(session, ctx, [PlanRequest(identity, trigger=f"policy:{fp[:12]}", previous_state=identity.state,
                                                 cause=cause) for identity in people])
            result.replanned += len(people)
    with db.transaction() as session:
        repository.supersede_held(session, fp, f"replaced by policy set {fp}")
        if approved is not None:  # the approved rollout is the one applied; its diff is what was read
            row = session.merge(approved)
            repository.mark_applied(row, utcnow(), row.decided_by or "approver")
            session.flush()
            _audit(session, row, diff)
        elif held is not None:  # the limit was raised: the held rollout is the one applied
            row = session.merge(held)
            row.previous_fingerprint = previous
            row.counts, row.diff, row.files, row.trigger = counts, diff.as_json(cap=DIFF_PEOPLE_CAP), files, trigger
            repository.mark_applied(row, utcnow(), f"policy_rollout_max_auto={settings.policy_rollout_max_auto}")
            session.flush()
            _audit(session, row, diff)
        else:
            row = _record(session, fp, previous, status, trigger, diff, files, started)
        result.rollout_id = row.id
    log.info("policy rollout %s: %d of %d people re-planned (%d gains, %d losses)", fp[:12],
             result.replanned, counts["population"], counts["gains"], counts["losses"])
    return result


def _record(session: Session, fp: str, previous: str | None, status: str, trigger: str,
            diff: PopulationDiff, files: dict[str, str], started, cap: int | None = DIFF_PEOPLE_CAP) -> PolicyRollout:
    """``cap=None`` for a rollout waiting for review: every person is listed, so the diff can
    be read per person before deciding."""
    counts = diff.counts()
    row = repository.add(session, PolicyRollout(
        fingerprint=fp, previous_fingerprint=previous, status=status, trigger=trigger, counts=counts,
        diff=diff.as_json(cap=cap), files=files, created_at=started,
        applied_at=utcnow() if status == RolloutStatus.APPLIED else None))
    _audit(session, row, diff)
    return row


def _audit(session: Session, row: PolicyRollout, diff: PopulationDiff) -> None:
    # The first set seen on an empty database changes nothing for anyone: only its row records it.
    if row.previous_fingerprint is not None or diff.affected:
        append(session, "policy.rollout", row.fingerprint, rollout_id=row.id, fingerprint=row.fingerprint,
               previous_fingerprint=row.previous_fingerprint, status=row.status, trigger=row.trigger,
               decided_by=row.decided_by, note=row.note, counts=row.counts, files=row.files)


def reload_policies(db: Database, ctx: PlanningContext, settings: Settings, *, trigger: str,
                    should_stop: Callable[[], bool] | None = None) -> RolloutResult:
    """Read the policy files again into the running ``ctx`` (validated against its targets; a
    set with problems raises ``ConfigError`` and the running set stays) and roll them out."""
    directory = Path(settings.policies_dir)
    files = policy_files(directory)
    ctx.policies = load_policies(directory, ctx.targets)
    return roll_out(db, ctx, settings, trigger=trigger, files=files, should_stop=should_stop)
