"""Acting on drift: unknown members are removed from managed groups (and the group read back),
people whose access drifted are re-planned, leavers' regained access becomes a revocation
incident, and all of it lands in the audit trail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from functools import partial

from sqlalchemy.orm import Session

from provisioner.audit.service import Entry, append, append_many
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.evidence.models import RevocationIncident
from provisioner.identities import repository as identities
from provisioner.planner.service import PlanningContext, plan_identity
from provisioner.reconcile import repository, runs
from provisioner.reconcile.report import Drift, Kind, ReconcileReport
from provisioner.reconcile.retry import ReadRetry
from provisioner.reconcile.runs import RunInfo
from provisioner.targets.contract import Connector, OpKind, OpResult, Outcome, TargetError, TargetOp

log = logging.getLogger(__name__)

VERIFIED = "removed (read back: no longer a member)"
Chosen = Collection[tuple[str, ...]] | None  # the drift lines (Drift.key) to fix; None: all


async def remove_unknown_members(db: Database, name: str, connector: Connector, group_ids: dict[str, str],
                                 drift: list[Drift], report: ReconcileReport, max_removals: int,
                                 retry: ReadRetry | None = None) -> None:
    """Remove the target's unknown members from its managed groups through ``apply`` (one
    REMOVE_MEMBER operation each), then read every group concerned back: only an account no
    longer listed counts as removed. Every attempt is audited; every failure is reported.
    More than ``max_removals`` at once are held, none removed: that many strangers more likely
    mean a wiped or wrong database than people added by hand."""
    unknown = [d for d in drift if d.kind == Kind.UNKNOWN_MEMBER and d.group in group_ids and d.remote_id]
    if not unknown:
        return
    # Read the links again: an account created or linked since the groups were read is not unknown.
    linked = await asyncio.to_thread(_linked, db, name, {d.remote_id for d in unknown if d.remote_id})
    todo: list[Drift] = []
    for d in unknown:
        if d.remote_id in linked:
            d.action = "linked to a person since it was read: left for the next run"
        else:
            todo.append(d)
    if len(todo) > max_removals:
        why = (f"held: {len(todo)} unknown members in {name} exceed PROVISIONER_RECONCILE_MAX_REMOVALS "
               f"({max_removals}); nothing removed")
        for d in todo:
            d.action = why
        report.errors.append(f"{name}: {why} (check the database is the right one, then raise the limit)")
        log.error("reconcile: %s", why, extra={"target": name, "alert": "reconcile_removals_held"})
        await asyncio.to_thread(_audit, db, [Entry("reconcile.removals_held", name, {
            "target": name, "unknown_members": len(todo), "max_removals": max_removals})])
        return
    ops = [TargetOp(n, OpKind.REMOVE_MEMBER, account_id=d.remote_id, group_id=group_ids[d.group or ""])
           for n, d in enumerate(todo, start=1)]
    results: dict[int, OpResult] = {}
    try:
        results = {r.op_id: r for r in await connector.apply(ops)}
    except TargetError as exc:
        results = {op.op_id: OpResult(op.op_id, exc.outcome, detail=exc.detail) for op in ops}
    after: dict[str, set[str] | str] = {}
    for group in dict.fromkeys(d.group or "" for d in todo):
        try:
            after[group] = await (retry or ReadRetry())(
                name, f"the members of {group!r} (read back)", partial(connector.group_member_ids, group_ids[group]))
        except TargetError as exc:
            after[group] = f"could not read the group back: {exc.detail}"
    entries: list[Entry] = []
    for op, d in zip(ops, todo, strict=True):
        result = results.get(op.op_id) or OpResult(op.op_id, Outcome.TRANSIENT, detail="no answer")
        members = after[d.group or ""]
        verified = isinstance(members, set) and d.remote_id not in members
        if verified:
            d.action, d.fixed = VERIFIED, True
            report.removed += 1
        else:
            why = members if isinstance(members, str) else (
                "still a member when read back" if result.outcome in (Outcome.DONE, Outcome.NOT_FOUND)
                else f"{result.outcome}: {result.detail}".rstrip(": "))
            d.action = f"removal failed: {why}"
            report.errors.append(f"{name}: removing {d.name()} ({d.remote_id}) from {d.group!r} failed: {why}")
            log.error("reconcile: removing unknown member %s from %s/%s failed: %s", d.remote_id, name, d.group,
                      why, extra={"target": name, "alert": "reconcile_fix_failed"})
        entries.append(Entry("reconcile.unknown_member_removed", f"{name}:{d.remote_id}", {
            "target": name, "group": d.group, "remote_id": d.remote_id, "login": d.login,
            "display_name": d.display_name, "employee_id": d.employee_id, "outcome": result.outcome.value,
            "status_code": result.status_code, "detail": result.detail, "verified": verified}))
    await asyncio.to_thread(_audit, db, entries)


def _linked(db: Database, name: str, remote_ids: set[str]) -> set[str]:
    with db.read() as session:
        return repository.linked_remote_ids(session, name, remote_ids)


def _audit(db: Database, entries: list[Entry]) -> None:
    with db.transaction() as session:
        append_many(session, entries)


def record(db: Database, ctx: PlanningContext, report: ReconcileReport, fix: bool, info: RunInfo,
           chosen: Chosen = None) -> None:
    """One unit of work: the run in the audit trail and stored (:mod:`.runs`); with ``fix`` the
    known state taken from the target and the people concerned re-planned (only the ``chosen``
    lines, when given); revocation incidents for leavers."""
    now = utcnow()
    with db.transaction() as session:
        plans = _replan(session, ctx, report, now, chosen) if fix else {}
        report.incidents = _incidents(session, report, plans, now)
        run_id = runs.store(session, report, info, fix=fix, now=now)
        append(session, "reconcile.run", None, drift=len(report.drift), fix=fix, items=report.audit_items(),
               errors=report.errors, replanned=report.replanned, removed=report.removed,
               incidents=report.incidents, run_id=run_id, trigger=info.trigger)


def _replan(session: Session, ctx: PlanningContext, report: ReconcileReport, now, chosen: Chosen) -> dict[str, int]:
    """Take the target's word for what exists, then plan each person back to the desired
    state. Returns the new plan's id by identity id."""
    touched: dict[str, list[Drift]] = {}
    for d in report.drift:
        if chosen is not None and d.key() not in chosen:
            continue
        if d.kind == Kind.POLICY:
            if d.identity_id and not d.held:
                touched.setdefault(d.identity_id, []).append(d)
            continue
        if d.kind in (Kind.UNKNOWN_MEMBER, Kind.ORPHAN) or not d.remote_id:
            continue  # not an account of a person the service manages
        account = identities.account_by_remote_id(session, d.target, d.remote_id)
        if account is None:
            continue
        if d.kind == Kind.MEMBER_ADDED and d.group:
            identities.add_membership(session, account.identity_id, d.target, d.group, None, now)
        elif d.kind == Kind.MEMBER_REMOVED and d.group:
            identities.remove_membership(session, account.identity_id, d.target, d.group)
        elif d.kind in (Kind.ACCOUNT_ENABLED, Kind.ACCOUNT_DISABLED):
            account.enabled = d.kind == Kind.ACCOUNT_ENABLED
        elif d.kind == Kind.ACCOUNT_DELETED:
            session.delete(account)
        touched.setdefault(account.identity_id, []).append(d)
    session.flush()
    plans: dict[str, int] = {}
    for identity_id, lines in touched.items():
        identity = identities.get(session, identity_id, lock=True)
        if identity is None:
            continue
        result = plan_identity(session, ctx, identity, trigger="reconcile", previous_state=identity.state)
        report.replanned += 1
        if result.plan is not None:
            plans[identity_id] = result.plan.id
            for d in lines:
                d.action, d.fixed = f"re-planned (plan {result.plan.id})", True
    return plans


def _incidents(session: Session, report: ReconcileReport, plans: dict[str, int], now) -> int:
    """A leaver's account enabled again, or put back in a managed group, behind the service's
    back: one open incident per (person, target, kind, group) until it is fixed."""
    opened = 0
    for d in report.drift:
        if not (d.terminated and d.identity_id and d.kind in Kind.INCIDENT):
            continue
        plan_id = plans.get(d.identity_id)
        incident = repository.open_incident(session, d.identity_id, d.target, d.kind, d.group)
        if incident is not None:
            if plan_id is not None:
                incident.plan_id = plan_id
            continue
        session.add(RevocationIncident(
            identity_id=d.identity_id, target=d.target, kind=d.kind, detected_at=now, detected_by="reconcile",
            plan_id=plan_id, detail={"group": d.group, "login": d.login, "display_name": d.display_name,
                                     "employee_id": d.employee_id, "remote_id": d.remote_id}))
        session.flush()  # the next line of the same run sees it
        opened += 1
    return opened
