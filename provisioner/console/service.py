"""What the console's pages show, composed from the services and repositories the HTTP API uses
(no queries of its own), and the audit record of each console action."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.change_control import approvals_service
from provisioner.change_control.holds import service as holds
from provisioner.console import reconcile_view
from provisioner.console.session import ConsoleUser
from provisioner.health import repository as health_repository
from provisioner.health.service import HaltsProvider, snapshot
from provisioner.intake.models import EventStatus
from provisioner.queue import repository as queue_repository
from provisioner.queue.models import OpStatus

QUEUE_COLUMNS = (OpStatus.PENDING, OpStatus.RUNNING, OpStatus.WAITING, OpStatus.DEAD)


def record(session: Session, user: ConsoleUser, action: str, subject: str | None = None, **data: Any) -> None:
    """Every console action in the audit trail, with who did it (never a secret)."""
    append(session, f"console.{action}", subject, by=user.actor, roles=sorted(user.roles), **data)


def overview(session: Session, halts: HaltsProvider | None, now: datetime) -> dict[str, Any]:
    snap = snapshot(session, halts)
    by_target = health_repository.operations_by_target(session)
    queues = [{"target": t, **{str(s): counts.get(s, 0) for s in QUEUE_COLUMNS}}
              for t, counts in sorted(by_target.items())]
    approvals = approvals_service.listing(session, now, status="pending", limit=5000)
    held = holds.listing(session, "held", 1000, now)
    return {
        "queues": queues,
        "halted": sorted(snap.halted.items()),
        "approvals": len(approvals),
        "oldest_approval": max((a.get("age_seconds") or 0 for a in approvals), default=None),
        "holds": len(held),
        "oldest_hold": max((h.age_seconds for h in held), default=None),
        "unverified_leavers": snap.unverified_leavers.count,
        "oldest_unverified_leaver": snap.age(snap.unverified_leavers),
        "rejected_events": health_repository.hr_events_by_status(session, EventStatus.REJECTED),
        "dead_letters": snap.dead_letters,
        "reconcile": reconcile_view.last_run(session),
    }


def dead_letters(session: Session, target: str | None) -> dict[str, Any]:
    """Dead operations grouped by target and reason (the first line of the last error)."""
    rows = [op for op in queue_repository.dead(session, limit=5000) if target is None or op.target == target]
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for op in rows:
        reason = (op.last_error or "unknown").splitlines()[0][:160]
        groups[(op.target, reason)].append(op)
    return {"groups": [{"target": t, "reason": r, "operations": ops} for (t, r), ops in sorted(groups.items())],
            "targets": sorted({op.target for op in rows})}
