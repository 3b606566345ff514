"""Apply due HR events: state machine, attributes, then a stored plan with queued operations.

Runs as a job (the scheduler, ``provisioner serve`` and the demo call it); each event is its
own transaction, so one bad event never holds up the rest. Immediate terminations go first.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities import repository as identities
from provisioner.identities.lifecycle import EventType
from provisioner.identities.service import apply_hr_event
from provisioner.intake import repository
from provisioner.intake.models import EventStatus, HREvent
from provisioner.planner.service import PlanningContext, plan_identity


@dataclass
class ProcessStats:
    applied: int = 0
    superseded: int = 0
    cancelled: int = 0
    rejected: int = 0
    pre_hires: int = 0

    @property
    def total(self) -> int:
        return self.applied + self.superseded + self.cancelled + self.rejected + self.pre_hires


def _finish(event: HREvent, status: str, reason: str | None = None) -> None:
    from provisioner.intake import fate  # (import kept here: only _finish is edited in this change)

    event.status, event.status_reason, event.processed_at = status, reason, utcnow()
    fate.settled(event)  # counted, and logged at WARNING if rejected/superseded, once committed


def process_event(session: Session, ctx: PlanningContext, event: HREvent, stats: ProcessStats) -> None:
    etype = EventType(event.type)
    if etype == EventType.CANCEL:
        target = repository.get(session, event.cancels_event_id or "")
        if target is None or target.employee_id != event.employee_id:
            _finish(event, EventStatus.REJECTED, f"no event {event.cancels_event_id!r} for this employee")
            stats.rejected += 1
        elif target.status != EventStatus.PENDING:
            _finish(event, EventStatus.REJECTED,
                    f"event {target.event_id!r} is already {target.status}: too late to cancel")
            stats.rejected += 1
        else:
            _finish(target, EventStatus.CANCELLED, f"withdrawn by {event.event_id}")
            _finish(event, EventStatus.DONE)
            stats.cancelled += 1
        append(session, "hr_event.cancel", event.employee_id, event_id=event.event_id,
               cancels=event.cancels_event_id, result=event.status, reason=event.status_reason)
        return
    identity = identities.by_employee_id(session, event.employee_id, lock=True)
    if (identity is not None and identity.hr_effective_at is not None
            and event.effective_at < identity.hr_effective_at and not event.immediate):
        reason = (f"older than the newest applied event ({identity.hr_effective_at.isoformat()}): "
                  "an older event never overwrites a newer one")
        _finish(event, EventStatus.SUPERSEDED, reason)
        append(session, "hr_event.superseded", event.employee_id, event_id=event.event_id, reason=reason)
        stats.superseded += 1
        return
    previous = identity.state if identity is not None else None
    attributes = event.payload.get("attributes", {})
    applied = apply_hr_event(session, employee_id=event.employee_id, event_type=etype,
                             event_id=event.event_id, effective_at=event.effective_at,
                             attributes=attributes, naming=ctx.naming)
    if not applied.transition.accepted:
        _finish(event, EventStatus.REJECTED, applied.transition.reason)
        stats.rejected += 1
        return
    assert applied.identity is not None
    plan_identity(session, ctx, applied.identity, trigger=f"event:{event.event_id}",
                  previous_state=previous, immediate=event.immediate)
    _finish(event, EventStatus.APPLIED)
    stats.applied += 1


def process_due(db: Database, ctx: PlanningContext, *, limit: int = 500) -> ProcessStats:
    """Apply every due event (in batches of ``limit``) and open pre-hire records."""
    stats = ProcessStats()
    skip_locked = db.dialect == "postgresql"
    while True:
        with db.transaction() as session:
            ids = [e.id for e in repository.claim_due(session, utcnow(), limit, skip_locked=False)]
        if not ids:
            break
        progressed = 0
        for event_id in ids:
            with db.transaction() as session:
                event = repository.lock_pending(session, event_id, skip_locked=skip_locked)
                if event is None:
                    continue
                process_event(session, ctx, event, stats)
                progressed += 1
        if progressed == 0:
            break
    with db.transaction() as session:
        for event in repository.future_hires_without_identity(session, utcnow(), limit):
            apply_hr_event(session, employee_id=event.employee_id, event_type=EventType.HIRE,
                           event_id=event.event_id, effective_at=event.effective_at,
                           attributes=event.payload.get("attributes", {}), naming=ctx.naming,
                           pre_hire=True)
            stats.pre_hires += 1
    return stats

