"""All queries on the operation queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from provisioner.identities.models import Identity, TargetAccount
from provisioner.planner.models import Plan
from provisioner.queue.models import Operation, OpStatus, Priority
from provisioner.targets.contract import OpKind

OPEN = (OpStatus.WAITING, OpStatus.PENDING, OpStatus.RUNNING)
ADD_MEMBER = "add_member"
CHUNK = 500  # ids in one ``IN (...)``
OPS = Operation.__table__
CLAIMED = (OPS.c.id, OPS.c.plan_id, OPS.c.identity_id, OPS.c.target, OPS.c.kind, OPS.c.group_key, OPS.c.payload,
           OPS.c.priority, OPS.c.attempts, OPS.c.next_attempt_at)  # what a claim reads of a row


@dataclass(frozen=True)
class Claimed:
    """A claimed operation as the worker needs it (a row, not an ORM object: a round claims
    hundreds, and the claim and its record are one statement each, not one per row)."""

    id: int
    plan_id: int | None
    identity_id: str
    target: str
    kind: str
    group_key: str | None
    payload: dict[str, Any]
    priority: int
    attempts: int  # counting this attempt


def claim(session: Session, worker_id: str, now: datetime, lease: timedelta, limit: int, *,
          skip_locked: bool, targets: Iterable[str] | None = None,
          revocation: bool | None = None, additions: bool = True) -> list[Claimed]:
    """Claim ready operations, most urgent first (leavers before everything else).

    Ready means pending and due, or running with an expired lease (its worker died). On
    PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several workers claim side by side.
    ``revocation=True`` claims only revocation work (``Priority.is_revocation``), ``False``
    only the rest; the worker never mixes the two in one round. ``additions=False`` leaves out
    pending group additions (the worker claims those group by group: ``claim_additions``).
    """
    ready = or_(
        and_(Operation.status == OpStatus.PENDING, Operation.next_attempt_at <= now),
        and_(Operation.status == OpStatus.RUNNING, Operation.lease_until < now),
    )
    stmt = select(*CLAIMED).where(ready)
    if revocation is not None:
        stmt = stmt.where(Operation.priority < Priority.NORMAL if revocation
                          else Operation.priority >= Priority.NORMAL)
    if not additions:
        stmt = stmt.where(or_(Operation.kind != ADD_MEMBER, Operation.status == OpStatus.RUNNING))
    if targets is not None:
        stmt = stmt.where(Operation.target.in_(list(targets)))
    stmt = stmt.order_by(Operation.priority, Operation.next_attempt_at, Operation.id).limit(limit)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return _take(session, list(session.execute(stmt)), worker_id, now, lease)


def _take(session: Session, rows: list[Any], worker_id: str, now: datetime, lease: timedelta) -> list[Claimed]:
    """Mark the selected rows running under this worker's lease: one UPDATE per ``CHUNK``."""
    ids = [r.id for r in rows]
    for start in range(0, len(ids), CHUNK):
        session.execute(update(OPS).where(OPS.c.id.in_(ids[start:start + CHUNK]))
                        .values(status=OpStatus.RUNNING, claimed_by=worker_id, lease_until=now + lease,
                                attempts=OPS.c.attempts + 1))
    return [Claimed(r.id, r.plan_id, r.identity_id, r.target, r.kind, r.group_key, dict(r.payload or {}),
                    r.priority, r.attempts + 1) for r in rows]


def claim_additions(session: Session, worker_id: str, now: datetime, lease: timedelta, limit: int, *,
                    per_request: int, hold: timedelta, skip_locked: bool,
                    targets: Iterable[str], planning: Callable[[], bool] = lambda: False) -> tuple[list[Claimed], datetime | None]:
    """Claim ready group additions (priority NORMAL and above) group by group, in whole requests
    of ``per_request`` members (Graph's ``members@odata.bind`` takes 20), so a group's additions
    arriving over several rounds still go out 20 to a request.

    A group's last additions short of a whole request are held while more of that group are on
    their way (additions still waiting on their account's create, or due again within ``hold``
    after a 429) and the oldest of them has been ready for less than ``hold``; the next round
    packs them with the ones arriving. ``planning()`` says HR events are still to be planned (an
    import under way): every group may get more; it is asked only when a group has a remainder. Nothing is held longer than ``hold``, and a
    group with nothing more on its way goes out at once (a mover's one addition). Revocation work
    never comes here.

    Returns the claimed operations and, when some were held, when the first held group is due.
    Cost: per target, pages of ``limit + per_request`` rows read in the order of
    ``ix_operations_additions`` (kind, status, target, group_key, next_attempt_at; no sort);
    later pages only past held groups (fewer than ``per_request`` rows each), and one indexed
    existence check per held remainder. PostgreSQL: claims of additions take turns (a
    transaction advisory lock) so two workers never split one group's request between them;
    rows are locked ``FOR UPDATE SKIP LOCKED`` against a planner withdrawing them.
    """
    if skip_locked:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                        {"name": "provisioner.claim_additions"})
    chosen: list[Operation] = []
    held_until: datetime | None = None
    for target in sorted(set(targets)):
        if len(chosen) >= limit:
            break
        taken, held = _claim_target_additions(session, target, now, limit - len(chosen), per_request=per_request,
                                              hold=hold, skip_locked=skip_locked, planning=planning)
        chosen.extend(taken)
        if held is not None:
            held_until = held if held_until is None else min(held_until, held)
    return _take(session, chosen, worker_id, now, lease), held_until


def _claim_target_additions(session: Session, target: str, now: datetime, limit: int, *, per_request: int,
                            hold: timedelta, skip_locked: bool, planning: Callable[[], bool]) -> tuple[list[Any], datetime | None]:
    # ``priority + 0``: a filter, not an index range (SQLite would otherwise take the general
    # claim index and sort every ready operation).
    base = (select(*CLAIMED)
            .where(Operation.kind == ADD_MEMBER, Operation.status == OpStatus.PENDING,
                   Operation.target == target, Operation.next_attempt_at <= now,
                   Operation.priority + 0 >= Priority.NORMAL)
            .order_by(Operation.group_key, Operation.next_attempt_at))
    page = max(1, limit) + per_request
    chosen: list[Any] = []
    held_until: datetime | None = None
    after: str | None = None
    while len(chosen) < limit:
        stmt = base if after is None else base.where(Operation.group_key > after)
        stmt = stmt.limit(page)
        if skip_locked:
            stmt = stmt.with_for_update(skip_locked=True)
        groups: dict[str | None, list[Any]] = {}
        rows = list(session.execute(stmt))
        for op in rows:
            groups.setdefault(op.group_key, []).append(op)
        keys = list(groups)
        cut = keys[-1] if len(rows) == page else None  # this group may go on past the page
        done = not rows or cut is None
        for index, key in enumerate(keys):
            members, room = groups[key], limit - len(chosen)
            if key == cut and index > 0:
                after = keys[index - 1]  # read it whole on the next page
                break
            whole = min(len(members), room) // per_request * per_request
            chosen.extend(members[:whole])
            rest = members[whole:]
            if key == cut or len(members) > room:
                done = True  # the round is full (or one large group fills it)
                break
            if not rest:
                continue
            oldest = rest[0].next_attempt_at
            if oldest <= now - hold or not (planning() or _more_additions_coming(session, (target, key), now, hold,
                                                                                 len(members))):
                chosen.extend(rest)
            else:
                due = oldest + hold
                held_until = due if held_until is None else min(held_until, due)
        if done:
            break
    return chosen, held_until


def _more_additions_coming(session: Session, key: tuple[str, str | None], now: datetime, hold: timedelta,
                           seen: int) -> bool:
    """More additions of this group than the ``seen`` just read as ready: ones waiting on their
    account's create, due within ``hold`` (a retry after a 429), or made ready after the page
    was read (PostgreSQL reads each statement afresh: a create recorded meanwhile releases its
    additions between the page and this check). One indexed count, stopped at ``seen + 1``."""
    target, group = key
    more = (select(Operation.id)
            .where(Operation.kind == ADD_MEMBER, Operation.target == target, Operation.group_key == group,
                   or_(Operation.status == OpStatus.WAITING,
                       and_(Operation.status == OpStatus.PENDING, Operation.next_attempt_at <= now + hold,
                            Operation.priority + 0 >= Priority.NORMAL)))
            .limit(seen + 1).subquery())
    return (session.scalar(select(func.count()).select_from(more)) or 0) > seen


def _filter(column):
    """``column`` as a plain filter, never an index range: with an indexed ``identity_id IN
    (...)`` beside it, SQLite would otherwise walk ``ix_operations_additions`` (kind, status,
    ...) over every pending addition of an onboarding wave (72% of planning time at 20,000)."""
    return column.op("||")("")


def _attempted_create():
    """A create that has been tried: it may have made the account even if no answer came back
    (a dropped connection, a timeout), so it is never withdrawn; it finishes (or links) and the
    worker then plans the person again."""
    return and_(Operation.kind == "create_account", Operation.attempts > 0)


def cancel_open_for(session: Session, identity_id: str, now: datetime) -> list[tuple[str, str]]:
    """Withdraw an identity's not-yet-running operations (see ``cancel_open_for_many``)."""
    return cancel_open_for_many(session, [identity_id], now).get(identity_id, [])


def cancel_open_for_many(session: Session, identity_ids: Sequence[str],
                         now: datetime) -> dict[str, list[tuple[str, str]]]:
    """Withdraw these identities' not-yet-running operations (newer plans replace them), held
    ones too (the new plan is screened again), except creates already attempted (see
    ``_attempted_create``).

    Returns, per identity, the (target, group) of withdrawn group additions that had been
    attempted: their outcome is unclear (a timeout may have added the member), so the planner
    counts them as held, and a removal or a resend follows from the new plan."""
    ids = sorted(set(identity_ids))
    unclear: dict[str, set[tuple[str, str]]] = {}
    for start in range(0, len(ids), 500):
        withdrawn = (Operation.identity_id.in_(ids[start:start + 500])
                     & _filter(Operation.status).in_((OpStatus.PENDING, OpStatus.WAITING, OpStatus.HELD))
                     & ~_attempted_create())
        for identity_id, target, group in session.execute(
                select(Operation.identity_id, Operation.target, Operation.group_key).where(
                    withdrawn, _filter(Operation.kind) == "add_member", Operation.attempts > 0,
                    Operation.group_key.is_not(None))).tuples():
            unclear.setdefault(identity_id, set()).add((target, group))
        session.execute(update(Operation).where(withdrawn)
                        .values(status=OpStatus.CANCELLED, completed_at=now, last_error="superseded by a newer plan"))
    return {identity_id: sorted(pairs) for identity_id, pairs in unclear.items()}


def open_creates_for(session: Session, identity_ids: Sequence[str]) -> list[tuple[str, str, int]]:
    """Creates still under way for these people, as (identity, target, operation id) in id
    order: running, or attempted and waiting to be retried. A new plan waits for them instead
    of planning others."""
    ids = sorted(set(identity_ids))
    out: list[tuple[str, str, int]] = []
    for start in range(0, len(ids), 500):
        out.extend(session.execute(select(Operation.identity_id, Operation.target, Operation.id).where(
            Operation.identity_id.in_(ids[start:start + 500]), _filter(Operation.kind) == "create_account",
            or_(Operation.status == OpStatus.RUNNING,
                and_(Operation.status == OpStatus.PENDING, Operation.attempts > 0))).order_by(Operation.id)).tuples())
    out.sort(key=lambda row: row[2])
    return out


def running_additions_for(session: Session, identity_ids: Sequence[str]) -> list[tuple[str, str, str, int]]:
    """Group additions of these people being sent now (running, its lease live or not), as
    (identity, target, group, operation id). A running operation is never withdrawn by a newer
    plan, so that plan must not send the same addition again: the app may store it twice."""
    ids = sorted(set(identity_ids))
    out: list[tuple[str, str, str, int]] = []
    for start in range(0, len(ids), 500):
        out.extend(session.execute(select(Operation.identity_id, Operation.target, Operation.group_key, Operation.id)
                                   .where(Operation.identity_id.in_(ids[start:start + 500]),
                                          _filter(Operation.kind) == ADD_MEMBER,
                                          _filter(Operation.status) == OpStatus.RUNNING,
                                          Operation.group_key.is_not(None))).tuples())
    return out


def release_dependents(session: Session, op_ids: Sequence[int], now: datetime) -> None:
    ids = list(op_ids)
    for start in range(0, len(ids), CHUNK):
        session.execute(update(OPS).where(OPS.c.depends_on_id.in_(ids[start:start + CHUNK]),
                                          OPS.c.status == OpStatus.WAITING)
                        .values(status=OpStatus.PENDING, next_attempt_at=now))


def release_manager_links(session: Session, arrived: Sequence[str], parked: Sequence[int], now: datetime) -> None:
    """Manager links waiting for the manager's account (``Action.WAIT``) become ready once it
    exists: those of the reports of people whose account was just created or linked
    (``arrived``: identity ids), and those just parked (``parked``: op ids), in case the manager
    arrived meanwhile. Set-based: a fixed number of statements per 500 people."""
    report, manager = aliased(Identity), aliased(Identity)
    manager_has_account = (select(TargetAccount.id)
                           .join(manager, manager.id == TargetAccount.identity_id)
                           .join(report, report.manager_employee_id == manager.employee_id)
                           .where(report.id == OPS.c.identity_id, TargetAccount.target == OPS.c.target)
                           .exists())
    waiting = and_(OPS.c.kind == OpKind.SET_MANAGER.value, OPS.c.status == OpStatus.WAITING,
                   OPS.c.depends_on_id.is_(None), manager_has_account)
    ids, pks = sorted(set(arrived)), sorted(set(parked))
    for start in range(0, len(ids), CHUNK):
        reports = (select(Identity.id).where(Identity.manager_employee_id.in_(
            select(Identity.employee_id).where(Identity.id.in_(ids[start:start + CHUNK]))
            .scalar_subquery())))
        session.execute(update(OPS).where(waiting, OPS.c.identity_id.in_(reports))
                        .values(status=OpStatus.PENDING, next_attempt_at=now)
                        .execution_options(synchronize_session=False))
    for start in range(0, len(pks), CHUNK):
        session.execute(update(OPS).where(waiting, OPS.c.id.in_(pks[start:start + CHUNK]))
                        .values(status=OpStatus.PENDING, next_attempt_at=now)
                        .execution_options(synchronize_session=False))


def still_claimed(session: Session, op_ids: Sequence[int], worker_id: str) -> set[int]:
    """Of these operations, the ones still running under this worker's claim (the others' lease
    ran out and another worker has them now)."""
    ids, out = list(op_ids), set()
    for start in range(0, len(ids), CHUNK):
        out.update(session.scalars(select(OPS.c.id).where(
            OPS.c.id.in_(ids[start:start + CHUNK]), OPS.c.status == OpStatus.RUNNING,
            OPS.c.claimed_by == worker_id)))
    return out


def mark_succeeded(session: Session, op_ids: Sequence[int], worker_id: str, now: datetime) -> None:
    """Operations of this worker's claim done: one UPDATE per ``CHUNK``, not one per row."""
    ids = list(op_ids)
    for start in range(0, len(ids), CHUNK):
        session.execute(update(OPS).where(OPS.c.id.in_(ids[start:start + CHUNK]),
                                          OPS.c.status == OpStatus.RUNNING, OPS.c.claimed_by == worker_id)
                        .values(status=OpStatus.SUCCEEDED, completed_at=now, lease_until=None, last_error=None))


def mark_checked(session: Session, outcomes: dict[int, tuple[str, str]], worker_id: str, now: datetime) -> None:
    """Record read-backs that did not verify the revocation: ``{op id: (status, what was found)}``;
    ``dead`` for one that found access remaining after the last round (a person must look)."""
    for op_id, (status, detail) in sorted(outcomes.items()):
        session.execute(update(OPS).where(OPS.c.id == op_id, OPS.c.claimed_by == worker_id)
                        .values(status=status, completed_at=now, lease_until=None, last_error=detail[:2000]))


def fail_dependents(session: Session, op_ids: Sequence[int], now: datetime, reason: str) -> list[int]:
    """Dead-letter what waits on failed operations, and what waits on those, and so on (a
    grant waits on its account's create, which may wait on the login owner's create). Returns
    the operations dead-lettered."""
    failed, out = list(op_ids), []
    while failed:
        waiting = list(session.scalars(select(Operation.id).where(
            Operation.depends_on_id.in_(failed), Operation.status == OpStatus.WAITING)))
        if waiting:
            session.execute(update(Operation).where(Operation.id.in_(waiting))
                            .values(status=OpStatus.DEAD, completed_at=now, last_error=reason))
        failed = waiting
        out += waiting
    return out


def release_verifications(session: Session, plan_ids: Iterable[int], now: datetime) -> None:
    """A plan's read-back of a target waits until the plan's other operations on that target
    have finished (a slow SCIM app never holds back Entra ID's read-back, nor the reverse)."""
    ids = sorted({p for p in plan_ids if p is not None})
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        # The waiting read-backs are locked first, and the busy ones read after: two worker
        # loops finishing a plan's last two operations at once would otherwise each see the
        # other's as still running (PostgreSQL, READ COMMITTED) and neither release the
        # read-back. The second one waits here for the first to commit, then sees its result.
        waiting = session.execute(select(Operation.id, Operation.plan_id, Operation.target).where(
            Operation.plan_id.in_(chunk), Operation.kind == "verify_revoked",
            Operation.status == OpStatus.WAITING).order_by(Operation.id).with_for_update()).tuples().all()
        if not waiting:
            continue
        busy = set(session.execute(select(Operation.plan_id, Operation.target).where(
            Operation.plan_id.in_(chunk), Operation.kind != "verify_revoked",
            Operation.status.in_(OPEN)).distinct()).tuples())
        ready = [op_id for op_id, plan_id, target in waiting if (plan_id, target) not in busy]
        if ready:
            session.execute(update(Operation).where(Operation.id.in_(ready))
                            .values(status=OpStatus.PENDING, next_attempt_at=now))


def by_ids(session: Session, op_ids: Sequence[int]) -> Sequence[Operation]:
    ids = list(op_ids)
    out: list[Operation] = []
    for start in range(0, len(ids), 500):
        out.extend(session.scalars(select(Operation).where(Operation.id.in_(ids[start:start + 500]))))
    return out


def dead(session: Session, limit: int = 500) -> Sequence[Operation]:
    return session.scalars(select(Operation).where(Operation.status == OpStatus.DEAD)
                           .order_by(Operation.id).limit(limit)).all()


def listing(session: Session, status: str | None, limit: int) -> Sequence[Operation]:
    stmt = select(Operation)
    if status is not None:
        stmt = stmt.where(Operation.status == status)
    return session.scalars(stmt.order_by(Operation.id.desc()).limit(limit)).all()


def get(session: Session, op_id: int) -> Operation | None:
    return session.get(Operation, op_id)


def for_plans(session: Session, plan_ids: Sequence[int]) -> Sequence[Operation]:
    return session.scalars(select(Operation).where(Operation.plan_id.in_(list(plan_ids)))
                           .order_by(Operation.id)).all()


def for_identity(session: Session, identity_id: str) -> Sequence[Operation]:
    return session.scalars(select(Operation).where(Operation.identity_id == identity_id)
                           .order_by(Operation.id)).all()


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Operation.status, func.count()).group_by(Operation.status))
    return {status: n for status, n in rows}


def has_ready(session: Session, now: datetime) -> bool:
    return session.scalar(select(Operation.id).where(or_(
        and_(Operation.status == OpStatus.PENDING, Operation.next_attempt_at <= now),
        and_(Operation.status == OpStatus.RUNNING, Operation.lease_until < now))).limit(1)) is not None


def next_attempt_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Operation.next_attempt_at))
                          .where(Operation.status == OpStatus.PENDING))


def dependents(session: Session, op_id: int) -> Sequence[Operation]:
    return session.scalars(select(Operation).where(Operation.depends_on_id == op_id)).all()


def release_claims(session: Session, op_ids: Sequence[int], worker_id: str, now: datetime) -> int:
    """Give back a stopping worker's claims that have no outcome: pending again, claimable
    now. Only while still its own (a lease that ran out may belong to another worker now);
    the attempt stays counted (the call may have reached the target)."""
    result = session.execute(
        update(Operation)
        .where(Operation.id.in_(list(op_ids)), Operation.status == OpStatus.RUNNING,
               Operation.claimed_by == worker_id)
        .values(status=OpStatus.PENDING, claimed_by=None, lease_until=None, next_attempt_at=now)
        .execution_options(synchronize_session=False))
    return result.rowcount


def progress_of(session: Session, triggers: Select | Sequence[str]) -> list[tuple[str, str, str, int]]:
    """(target, kind, status, count) of the operations of the plans with these triggers (one
    import's events, one policy rollout): what ``--wait`` follows to the end."""
    return list(session.execute(
        select(Operation.target, Operation.kind, Operation.status, func.count())
        .join(Plan, Plan.id == Operation.plan_id).where(Plan.trigger.in_(triggers))
        .group_by(Operation.target, Operation.kind, Operation.status)).tuples())
