"""Dead-letter replay: a person fixed the cause; the operation runs again from attempt one."""

from __future__ import annotations

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.queue import repository
from provisioner.queue.models import OpStatus


class ReplayError(ValueError):
    pass


def replay(session: Session, op_id: int | None) -> list[int]:
    """Replay one dead operation, or all of them (``op_id=None``)."""
    if op_id is not None:
        op = repository.get(session, op_id)
        if op is None:
            raise ReplayError(f"no operation {op_id}")
        if op.status != OpStatus.DEAD:
            raise ReplayError(f"operation {op_id} is {op.status}, not dead: only dead operations are replayed")
        ops = [op]
    else:
        ops = list(repository.dead(session, limit=100_000))
    now = utcnow()
    for op in ops:
        op.status, op.attempts, op.next_attempt_at = OpStatus.PENDING, 0, now
        op.completed_at, op.lease_until = None, None
        op.last_error = f"replayed at {now.isoformat(timespec='seconds')} after: {op.last_error}"[:2000]
    # Operations that waited on a replayed one had been failed with it: bring them back too.
    for op in ops:
        for dependent in repository.dependents(session, op.id):
            if dependent.status == OpStatus.DEAD:
                dependent.status, dependent.attempts, dependent.completed_at = OpStatus.WAITING, 0, None
    if ops:
        append(session, "operation.replayed", None, op_ids=[op.id for op in ops])
    return [op.id for op in ops]
