"""Dead-letter replay: a person fixed the cause; the operation runs again from attempt one.

Every caller (``provisioner ops replay``, the console's dead letters) replays through here, and
so through change control (``change_control.replay_gate``): a grant that needs an approver's
decision it does not have is not replayed, and destructive work is screened for mass-change
holds as a planned operation is (it may go back to the queue ``held``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.change_control import replay_gate
from provisioner.clock import utcnow
from provisioner.queue import repository
from provisioner.queue.models import Operation, OpStatus

if TYPE_CHECKING:
    from provisioner.planner.service import PlanningContext

AUDIT_CAP = 1000  # operation ids listed in one audit record per list


class ReplayError(ValueError):
    pass


@dataclass
class Replayed:
    op_ids: list[int] = field(default_factory=list)  # back in the queue (pending, waiting, or held)
    held: dict[int, int] = field(default_factory=dict)  # of those, held: op id -> hold set id
    refused: dict[int, str] = field(default_factory=dict)  # still dead, and why


def replay(session: Session, op_id: int | None, *, ctx: PlanningContext) -> Replayed:
    """Replay one dead operation, or all of them (``op_id=None``), with the operations that had
    been failed because they waited on one (they wait on it again). One operation refused by
    change control raises :class:`ReplayError` with the reason; of all, the refused ones stay
    dead and are listed in ``refused``."""
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
    screened = replay_gate.screen(session, ctx, ops, now)
    if op_id is not None and op_id in screened.refused:
        raise ReplayError(screened.refused[op_id])
    out = Replayed(refused=dict(screened.refused))
    chosen = [op for op in ops if op.id not in screened.refused]
    # Operations that waited on a replayed one had been failed with it: they come back too,
    # through the same gate.
    ids = {op.id for op in chosen}
    dependents = [d for op in chosen for d in repository.dependents(session, op.id)
                  if d.status == OpStatus.DEAD and d.id not in ids]
    later = replay_gate.screen(session, ctx, dependents, now)
    out.refused.update(later.refused)
    dependents = [d for d in dependents if d.id not in later.refused]
    held = {**screened.held, **later.held}
    for op in chosen + dependents:
        _requeue(op, ids, held.get(op.id), now)
    out.op_ids, out.held = [op.id for op in chosen + dependents], held
    if out.op_ids or out.refused:
        append(session, "operation.replayed", None, op_ids=out.op_ids[:AUDIT_CAP],
               held={str(k): v for k, v in list(held.items())[:AUDIT_CAP]},
               refused=[{"op_id": k, "reason": v} for k, v in list(out.refused.items())[:AUDIT_CAP]])
    return out


def _requeue(op: Operation, replayed: set[int], hold_id: int | None, now) -> None:
    """From attempt one: held in its hold set, waiting for a dependency replayed with it, or due now."""
    waits = op.depends_on_id is not None and op.depends_on_id in replayed
    status = OpStatus.HELD if hold_id is not None else OpStatus.WAITING if waits else OpStatus.PENDING
    previous = op.last_error
    op.status, op.attempts, op.next_attempt_at = status, 0, now
    op.completed_at, op.lease_until, op.claimed_by = None, None, None
    if hold_id is not None:
        op.hold_id = hold_id
    op.last_error = f"replayed at {now.isoformat(timespec='seconds')} after: {previous}"[:2000]
