"""Mass-change holds: the brake on a cause that would disable, delete or remove too much.

The rule (one place, :meth:`HoldPolicy.crosses`): per target and cause, the people with
destructive work (a disable, a deletion, a membership removal) planned in the last
``hold_window_minutes`` are counted; when they exceed BOTH the cause's count and its share of
the target's managed accounts, that cause's destructive work on that target is held.

Where: at planning time. ``planner.service`` hands every batch of operations it is about to
insert to :meth:`HoldPolicy.screen` (the planning context carries the policy), which tags
destructive operations and their companions (ending sessions, the read-back) with their cause
and, past the thresholds, inserts them ``held`` in the open hold set of their (target, cause),
with the not-yet-tried work of the same cause and target from earlier in the window. Held
operations are never claimed (the claim reads ``pending`` only), live in ``operations`` like any
other and so survive restarts; an approver releases the set (back to the queue as planned) or
cancels it (withdrawn, recorded). A new plan for a held person supersedes the held work as it
supersedes pending work; its destructive work joins the person's open set again, unless HR
terminates or rehires them (:func:`passes_hold`): then it is screened under its own cause.

Individual HR terminations are never held below the thresholds: the count of HR-caused people
in the window must pass ``hold_hr_termination_count`` (50 by default) first, so revocation of a
leaver stays immediate. A rollout an approver approved (``Cause.REVIEWED_ROLLOUT``) is never
held again: the approver has read its diff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.change_control.holds import repository
from provisioner.change_control.holds.models import Cause, HoldSet, HoldStatus
from provisioner.change_control.holds.schemas import HeldOperation, HoldDecisionOut, HoldSetDetail, HoldSetOut
from provisioner.db import after_commit
from provisioner.queue import repository as queue
from provisioner.queue.models import OpStatus
from provisioner.targets.contract import OpKind

if TYPE_CHECKING:
    from provisioner.settings import Settings

log = logging.getLogger(__name__)

HOLDS_OPENED = Counter("provisioner_holds_opened_total", "Mass-change hold sets opened", ["target", "cause"])
AUDIT_PEOPLE_CAP = 1000  # employee ids listed in one hold record (the count is exact)


class HoldError(ValueError):
    """A decision that cannot be made: ``status`` is the HTTP answer (404 unknown, 409 decided)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Threshold:
    count: int  # more people than this ...
    share: float  # ... and more than this share of the target's managed accounts

    def crosses(self, people: int, population: int) -> bool:
        return people > self.count and (people / population if population else 1.0) > self.share


def cause_of(trigger: str) -> str | None:
    """A plan's cause from its trigger: ``event:snapshot-...`` (the snapshot import's terminate
    events), ``event:...`` (HR), ``policy:...``, ``reconcile``, ``scim``; anything else
    (a worker converging a person, a manual re-plan) is not screened."""
    if trigger.startswith("event:snapshot-"):
        return Cause.SNAPSHOT
    if trigger.startswith("event:"):
        return Cause.HR
    if trigger.startswith("policy:"):
        return Cause.POLICY
    return {"reconcile": Cause.RECONCILE, "scim": Cause.SCIM}.get(trigger)


PASSING_PLANS = ("leaver", "rehire")  # the plan kinds (planner.service._plan_kind) that pass an open set


def passes_hold(cause: str | None, plan_kind: str | None) -> bool:
    """Whether a plan goes past its person's open hold set: only HR terminating the person (a
    leaver must never keep access because of a hold) or rehiring them (the correction of a held
    termination). Its own destructive work is screened under its own cause. Every other plan of a
    held person (an HR update or transfer, a leave, a reconcile, a rollout, the worker converging
    them) joins the set: its destructive work and companions wait for the approver's decision."""
    return cause in (Cause.HR, Cause.SNAPSHOT) and plan_kind in PASSING_PLANS


@dataclass
class HoldPolicy:
    """The thresholds in force (settings, per target overrides) and the screen that applies them."""

    window: timedelta
    thresholds: dict[str, Threshold]
    overrides: dict[str, dict[str, Threshold]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, overrides: Mapping[str, Mapping[str, Threshold]] | None = None
                      ) -> HoldPolicy:
        return cls(timedelta(minutes=settings.hold_window_minutes), {
            cause: Threshold(getattr(settings, f"hold_{cause}_count"), getattr(settings, f"hold_{cause}_share"))
            for cause in Cause.HOLDABLE}, {t: dict(v) for t, v in (overrides or {}).items()})

    def limit(self, target: str, cause: str) -> Threshold | None:
        return self.overrides.get(target, {}).get(cause) or self.thresholds.get(cause)

    def screen(self, session: Session, rows: Sequence[dict[str, Any]], triggers: Mapping[str, str],
               now: datetime, kinds: Mapping[str, str] | None = None) -> None:
        """Tag the destructive operations (and their companions) of a batch about to be inserted
        with their cause (``triggers``: by identity id, a plan's trigger or a cause) and hold
        them where a threshold is crossed. ``kinds``: by identity id, the plan's kind (leaver,
        rehire, mover, ...), which says who passes an open set (:func:`passes_hold`)."""
        causes = {i: t if t in Cause.ALL else cause_of(t) for i, t in triggers.items()}
        kinds = kinds or {}
        holdable = [row for row in rows if row["kind"] in repository.DESTRUCTIVE or row["kind"] in repository.COMPANIONS]
        for row in rows:
            row["cause"], row["hold_id"] = None, None
        # A person whose work waits in an open set stays there whatever re-plans them (the
        # worker converging them, a reconcile, a rollout, an HR update or transfer) until the
        # approver decides; only HR terminating or rehiring them goes past it (screened on its own).
        passing = {i for i, cause in causes.items() if passes_hold(cause, kinds.get(i))}
        inherited = repository.open_holds_of(session, [row["identity_id"] for row in holdable
                                                       if row["identity_id"] not in passing])
        people: dict[tuple[str, str], set[str]] = {}
        for row in holdable:
            cause, kind = causes.get(row["identity_id"]), row["kind"]
            row["cause"] = cause
            held = inherited.get((row["identity_id"], row["target"])) if row["identity_id"] not in passing else None
            if held is not None:
                row["hold_id"], row["cause"], row["status"] = held[0], held[1], OpStatus.HELD
                continue
            if row["cause"] is not None and kind in repository.DESTRUCTIVE:
                people.setdefault((row["target"], cause), set()).add(row["identity_id"])  # type: ignore[arg-type]
        for (target, cause), who in sorted(people.items()):
            limit = self.limit(target, cause)
            hold = None if limit is None else self._decide(session, target, cause, who, limit, now)
            if hold is None:
                continue
            for row in rows:
                if row["cause"] == cause and row["target"] == target and row["identity_id"] in who:
                    row["status"], row["hold_id"] = OpStatus.HELD, hold.id

    def _decide(self, session: Session, target: str, cause: str, who: set[str], limit: Threshold,
                now: datetime) -> HoldSet | None:
        repository.lock_window(session, target, cause)
        since = now - self.window
        current = repository.open_set(session, target, cause, lock=True)
        counted = len(repository.window_people(session, target, cause, since,
                                               current.id if current else None) | who)
        if counted <= limit.count:  # the cheap test first: one indexed query per leaver
            return None
        population = repository.population(session, target)
        if not limit.crosses(counted, population):
            return None
        if current is not None:
            current.people = max(current.people, counted)
            return current
        hold = repository.add(session, HoldSet(
            target=target, cause=cause, status=HoldStatus.HELD, opened_at=now, people=counted,
            population=population, thresholds={"count": limit.count, "share": limit.share,
                                               "window_minutes": self.window.total_seconds() / 60}))
        swept = repository.sweep(session, hold, since, now)
        HOLDS_OPENED.labels(target, cause).inc()
        log.warning("mass change held: %s would touch %d of %d people in %s within %.0f min (more than %d and "
                    "%.0f%%); hold set %d waits for an approver ('provisioner holds show %d')", cause, counted,
                    population, target, self.window.total_seconds() / 60, limit.count, limit.share * 100,
                    hold.id, hold.id, extra={"alert": "mass_change_held", "target": target, "cause": cause,
                                             "hold_id": hold.id})
        append(session, "hold.opened", f"{target}/{cause}", hold_id=hold.id, target=target, cause=cause,
               people=counted, population=population, thresholds=hold.thresholds, swept_operations=swept)
        return hold


def hold_policy(settings: Settings, targets: Mapping[str, Any]) -> HoldPolicy:
    """The settings' thresholds with each target file's ``holds:`` overrides."""
    return HoldPolicy.from_settings(settings, {
        name: {cause: Threshold(limit.count, limit.share) for cause, limit in getattr(t, "holds", {}).items()}
        for name, t in targets.items()})


# -- decisions -------------------------------------------------------------------------------------
@dataclass
class Decision:
    hold: HoldSet
    operations: int
    people: list[str]  # employee ids


def release(session: Session, hold_id: int, by: str, comment: str | None, now: datetime, *,
            wake: Callable[[], None] | None = None) -> Decision:
    """The approver says go: the held operations return to the queue as planned (a read-back
    waits for its plan's work on the target again; deferred deletions keep their date). One
    whose dependency ended while it was held without succeeding (dead-lettered, or withdrawn)
    is dead-lettered now with the reason, as the worker fails what waits on a failed operation,
    instead of waiting for it forever. ``wake`` (this process's worker) is called once the
    release has committed, so the operations run now rather than at the worker's next poll."""
    hold = _undecided(session, hold_id)
    held = repository.operations(session, hold_id, OpStatus.HELD)
    failed = _send_back(session, hold, held, now)
    if wake is not None:
        after_commit(session, wake)
    return _decided(session, hold, HoldStatus.RELEASED, held, by, comment, now, dead_lettered=failed)


def _fail_orphans(session: Session, hold: HoldSet, ended: Mapping[int, Any], now: datetime) -> list[int]:
    """Dead-letter the released operations waiting on a dependency that will never succeed (and
    what waits on them), through the queue's own path (``fail_dependents``), naming it."""
    failed: list[int] = []
    for dep in sorted(ended.values(), key=lambda d: d.id):
        reason = (f"operation {dep.id} it depends on ({dep.kind} on {dep.target}) was {dep.status} while "
                  f"hold set {hold.id} held this one: {dep.last_error or 'no reason recorded'}")[:2000]
        failed += queue.fail_dependents(session, [dep.id], now, reason)
    if failed:
        log.error("hold set %d released: %d operation(s) dead-lettered, their dependency failed while held "
                  "(provisioner ops list --dead)", hold.id, len(failed),
                  extra={"hold_id": hold.id, "target": hold.target, "alert": "dead_letter"})
    return failed


def cancel(session: Session, hold_id: int, by: str, comment: str | None, now: datetime) -> Decision:
    """The approver says no: the held operations are withdrawn (cancelled, with the reason).
    People's state stays as their source said: a leaver held by a mass termination stays
    terminated in the service with the account untouched; HR's correction (a rehire, a snapshot
    that names them) or a later re-plan of that person decides what happens next."""
    hold = _undecided(session, hold_id)
    held = repository.operations(session, hold_id, OpStatus.HELD)
    _withdraw(held, hold_id, by, comment, now)
    return _decided(session, hold, HoldStatus.CANCELLED, held, by, comment, now)


def decide_people(session: Session, hold_id: int, employee_ids: Sequence[str], *, release_them: bool, by: str,
                  comment: str | None, now: datetime, wake: Callable[[], None] | None = None) -> Decision:
    """Release or cancel the held work of some people of a set (each person's operations
    together: the disable, the sessions ended, the read-back). Their operations move to a hold
    set of their own, decided at once (listed with the others; ``part_of`` in its audit record),
    so they leave the open set for good; the others stay held. All of the set's people: the set
    is decided whole."""
    hold = _undecided(session, hold_id)
    held = repository.operations(session, hold_id, OpStatus.HELD)
    wanted = set(employee_ids)
    unknown = wanted - {person.employee_id or person.id for _, person in held}
    if not wanted or unknown:
        raise HoldError(404, f"hold set {hold_id} holds no operation of {', '.join(sorted(unknown)) or 'nobody'}")
    chosen = [(op, person) for op, person in held if (person.employee_id or person.id) in wanted]
    if len(chosen) == len(held):
        if release_them:
            return release(session, hold_id, by, comment, now, wake=wake)
        return cancel(session, hold_id, by, comment, now)
    status = HoldStatus.RELEASED if release_them else HoldStatus.CANCELLED
    part = repository.add(session, HoldSet(
        target=hold.target, cause=hold.cause, status=status, opened_at=hold.opened_at,
        people=len({op.identity_id for op, _ in chosen}), population=hold.population,
        thresholds=dict(hold.thresholds or {})))
    for op, _ in chosen:
        op.hold_id = part.id
    failed: list[int] = []
    if release_them:
        failed = _send_back(session, part, chosen, now)
        if wake is not None:
            after_commit(session, wake)
    else:
        _withdraw(chosen, hold_id, by, comment, now)
    return _decided(session, part, status, chosen, by, comment, now, dead_lettered=failed, part_of=hold.id)


def _send_back(session: Session, hold: HoldSet, held: list, now: datetime) -> list[int]:
    """Return released operations to the queue; those whose dependency ended without succeeding
    are dead-lettered (their ids returned)."""
    ended = repository.ended_dependencies(session, [op.depends_on_id for op, _ in held if op.depends_on_id])
    for op, _ in held:
        waits = op.kind == OpKind.VERIFY_REVOKED.value or (op.depends_on_id is not None
                                                            and op.depends_on_id not in ended.succeeded)
        op.status = OpStatus.WAITING if waits else OpStatus.PENDING
        op.next_attempt_at = max(op.next_attempt_at, now)
    session.flush()
    failed = _fail_orphans(session, hold, ended.failed, now)
    queue.release_verifications(session, {op.plan_id for op, _ in held if op.plan_id is not None}, now)
    return failed


def _withdraw(held: list, hold_id: int, by: str, comment: str | None, now: datetime) -> None:
    why = f"withdrawn: hold set {hold_id} cancelled by {by}" + (f": {comment}" if comment else "")
    for op, _ in held:
        op.status, op.completed_at, op.last_error = OpStatus.CANCELLED, now, why[:2000]


def settle_stragglers(session: Session, now: datetime) -> int:
    """Operations a plan put in a hold set while a concurrent release or cancel was committing
    (the planner reads the open sets without locking them, so it never deadlocks with a
    decision) follow the set's decision here: released ones go to the queue, cancelled ones
    are withdrawn. Run by the scheduler with the approvals' expiry; returns how many."""
    settled = 0
    for hold in repository.decided_with_held(session):
        held = repository.operations(session, hold.id, OpStatus.HELD)
        if hold.status == HoldStatus.RELEASED:
            failed = _send_back(session, hold, held, now)
        else:
            _withdraw(held, hold.id, hold.decided_by or "?", hold.comment, now)
            failed = []
        append(session, f"hold.{hold.status}_late", f"{hold.target}/{hold.cause}", hold_id=hold.id,
               operations=len(held), op_ids=[op.id for op, _ in held][:AUDIT_PEOPLE_CAP * 4],
               dead_lettered=failed[:AUDIT_PEOPLE_CAP * 4])
        log.warning("hold set %d was %s while a plan added %d operation(s) to it: they follow the decision",
                    hold.id, hold.status, len(held), extra={"hold_id": hold.id, "target": hold.target})
        settled += len(held)
    return settled


def _undecided(session: Session, hold_id: int) -> HoldSet:
    hold = repository.get(session, hold_id, lock=True)
    if hold is None:
        raise HoldError(404, f"no hold set {hold_id} (see 'provisioner holds list')")
    if hold.status != HoldStatus.HELD:
        raise HoldError(409, f"hold set {hold_id} was already {hold.status} by {hold.decided_by} "
                             f"at {hold.decided_at.isoformat(timespec='seconds') if hold.decided_at else '?'}")
    return hold


def _decided(session: Session, hold: HoldSet, status: str, held: list, by: str, comment: str | None,
             now: datetime, *, dead_lettered: Sequence[int] = (), **extra: Any) -> Decision:
    hold.status, hold.decided_by, hold.decided_at, hold.comment = status, by, now, comment
    people = sorted({person.employee_id or person.id for _, person in held})
    if dead_lettered:
        extra["dead_lettered"] = list(dead_lettered)[:AUDIT_PEOPLE_CAP * 4]
    append(session, f"hold.{status}", f"{hold.target}/{hold.cause}", hold_id=hold.id, target=hold.target,
           cause=hold.cause, decided_by=by, comment=comment, operations=len(held), people_count=len(people),
           people=people[:AUDIT_PEOPLE_CAP], op_ids=[op.id for op, _ in held][:AUDIT_PEOPLE_CAP * 4], **extra)
    log.info("hold set %d %s by %s: %d operation(s) of %d people", hold.id, status, by, len(held), len(people))
    return Decision(hold, len(held), people)


# -- reading ---------------------------------------------------------------------------------------
def listing(session: Session, status: str | None, limit: int, now: datetime) -> list[HoldSetOut]:
    rows = repository.listing(session, status, limit)
    counts = repository.held_counts(session, [h.id for h in rows])
    return [_out(h, counts.get(h.id, (0, 0)), now) for h in rows]


def detail(session: Session, hold_id: int, now: datetime) -> HoldSetDetail:
    hold = repository.get(session, hold_id)
    if hold is None:
        raise HoldError(404, f"no hold set {hold_id} (see 'provisioner holds list')")
    ops = repository.operations(session, hold_id)
    counts = repository.held_counts(session, [hold_id]).get(hold_id, (0, 0))
    return HoldSetDetail(**_out(hold, counts, now).model_dump(), operations=[
        HeldOperation(id=op.id, employee_id=person.employee_id, display_name=person.display_name, kind=op.kind,
                      group=op.group_key, status=op.status, reason=(op.payload or {}).get("reason"))
        for op, person in ops])


def decision_out(decision: Decision, now: datetime) -> HoldDecisionOut:
    return HoldDecisionOut(hold=_out(decision.hold, (0, 0), now), operations=decision.operations,
                           people=decision.people)


def _out(hold: HoldSet, counts: tuple[int, int], now: datetime) -> HoldSetOut:
    end = hold.decided_at or now
    return HoldSetOut(id=hold.id, target=hold.target, cause=hold.cause, status=hold.status,
                      opened_at=hold.opened_at, age_seconds=max(0.0, (end - hold.opened_at).total_seconds()),
                      people=hold.people, population=hold.population, thresholds=hold.thresholds or {},
                      held_operations=counts[0], held_people=counts[1], decided_at=hold.decided_at,
                      decided_by=hold.decided_by, comment=hold.comment)
