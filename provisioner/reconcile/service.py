"""Drift reconciliation: read each managed group and account back from the target and compare
with what the service knows. Changes made behind the service's back are reported, and with
``fix`` corrected by re-planning the people concerned."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities import repository as identities
from provisioner.identities.models import TargetAccount, TargetMembership
from provisioner.planner.service import PlanningContext, plan_identity
from provisioner.queue.group_ids import GroupIds
from provisioner.targets.contract import Connector


@dataclass
class Drift:
    target: str
    group: str | None
    kind: str  # member_added_elsewhere, member_removed_elsewhere, unknown_member, account_enabled_elsewhere...
    employee_id: str | None
    remote_id: str


@dataclass
class ReconcileReport:
    drift: list[Drift] = field(default_factory=list)
    replanned: int = 0
    errors: list[str] = field(default_factory=list)


def _known(db: Database, target: str
           ) -> tuple[dict[str, TargetAccount], dict[str, set[str]], dict[str, str | None]]:
    """What the service knows of one target: accounts by remote id, members by group, and each
    account holder's employee id (for the report)."""
    with db.read() as session:
        accounts = {a.remote_id: a for a in session.query(TargetAccount).filter(TargetAccount.target == target)}
        members: dict[str, set[str]] = {}
        for m in session.query(TargetMembership).filter(TargetMembership.target == target):
            members.setdefault(m.group_key, set()).add(m.identity_id)
        people = identities.identities_by_id(session, [a.identity_id for a in accounts.values()])
        employees = {rid: people[a.identity_id].employee_id if a.identity_id in people else None
                     for rid, a in accounts.items()}
        return accounts, members, employees


async def reconcile(db: Database, ctx: PlanningContext, connectors: dict[str, Connector], *,
                    fix: bool) -> ReconcileReport:
    report = ReconcileReport()
    resolver = GroupIds(db, ctx)
    for name, connector in connectors.items():
        accounts, known_members, employees = await asyncio.to_thread(_known, db, name)
        by_identity = {a.identity_id: a for a in accounts.values()}
        managed = ctx.targets[name].managed_group_names()
        group_ids = await resolver.resolve(name, connector, managed)
        for group in managed:
            gid = group_ids.get(group)
            if gid is None:
                report.errors.append(f"{name}: managed group {group!r} not found")
                continue
            actual = await connector.group_member_ids(gid)
            known = {by_identity[i].remote_id for i in known_members.get(group, set()) if i in by_identity}
            for remote_id in actual - known:
                account = accounts.get(remote_id)
                kind = "member_added_elsewhere" if account else "unknown_member"
                report.drift.append(Drift(name, group, kind, employees.get(remote_id), remote_id))
            for remote_id in known - actual:
                report.drift.append(Drift(name, group, "member_removed_elsewhere",
                                          employees.get(remote_id), remote_id))
        states = await connector.read_accounts(list(accounts), [])
        for remote_id, state in states.items():
            account = accounts[remote_id]
            if not state.exists:
                report.drift.append(Drift(name, None, "account_deleted_elsewhere", employees.get(remote_id), remote_id))
            elif state.enabled is not None and state.enabled != account.enabled:
                kind = "account_enabled_elsewhere" if state.enabled else "account_disabled_elsewhere"
                report.drift.append(Drift(name, None, kind, employees.get(remote_id), remote_id))
    await asyncio.to_thread(_record, db, ctx, report, fix)
    return report


def _record(db: Database, ctx: PlanningContext, report: ReconcileReport, fix: bool) -> None:
    now = utcnow()
    with db.transaction() as session:
        append(session, "reconcile.run", None, drift=len(report.drift), fix=fix,
               items=[[d.target, d.group, d.kind, d.employee_id, d.remote_id] for d in report.drift[:1000]],
               errors=report.errors)
        if not fix:
            return
        touched: set[str] = set()
        for d in report.drift:
            account = identities.account_by_remote_id(session, d.target, d.remote_id)
            if account is None:
                continue  # not a person the service manages: reported only
            # Take the target's word for what exists, then plan back to the desired state.
            if d.kind == "member_added_elsewhere" and d.group:
                identities.add_membership(session, account.identity_id, d.target, d.group, None, now)
            elif d.kind == "member_removed_elsewhere" and d.group:
                identities.remove_membership(session, account.identity_id, d.target, d.group)
            elif d.kind in ("account_enabled_elsewhere", "account_disabled_elsewhere"):
                account.enabled = d.kind == "account_enabled_elsewhere"
            elif d.kind == "account_deleted_elsewhere":
                session.delete(account)
            touched.add(account.identity_id)
        session.flush()
        for identity_id in touched:
            identity = identities.get(session, identity_id, lock=True)
            if identity is not None:
                plan_identity(session, ctx, identity, trigger="reconcile", previous_state=identity.state)
                report.replanned += 1
