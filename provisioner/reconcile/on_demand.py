"""Runs a person asks for (the console): reconcile now, and fix selected drift items of a stored
run. Both take the ``reconcile`` lock the scheduled run takes (:mod:`.schedule`), without
waiting: one reconciliation at a time across processes.

"Fix selected" fixes through ``reconcile --fix`` itself: the targets of the selected items are
read again and only the lines matching the selection (:meth:`Drift.key`) are corrected, so
unknown members leave through :func:`.fix.remove_unknown_members` (``unknown_members``,
``reconcile_max_removals``), drifted people are re-planned (mass-change holds apply: cause
``reconcile_fix``), leavers' regained access opens revocation incidents. That read is a new
stored run (trigger ``console:<name>``). Each selected item is then marked with what happened:
fixed, not fixed and why, or no longer drifting; an item fixed before is reported, not re-done."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.planner.service import PlanningContext
from provisioner.reconcile import repository
from provisioner.reconcile.models import ReconcileDrift
from provisioner.reconcile.report import Drift, Kind, ReconcileReport
from provisioner.reconcile.retry import ReadRetry
from provisioner.reconcile.runs import Keep
from provisioner.reconcile.schedule import LOCK
from provisioner.reconcile.service import reconcile
from provisioner.settings import Settings
from provisioner.targets.contract import Connector


class Busy(Exception):
    """Another reconciliation holds the lock."""

    def __init__(self) -> None:
        super().__init__("another reconciliation is running: try again in a minute")


class SelectionError(Exception):
    """Nothing to fix: an unknown run, or no item of it selected."""


@dataclass
class Fixed:
    """What "fix selected" did, item by item (``(item id, what happened)``)."""

    run_id: int
    new_run_id: int | None = None
    fixed: list[tuple[int, str]] = field(default_factory=list)
    not_fixed: list[tuple[int, str]] = field(default_factory=list)
    gone: list[tuple[int, str]] = field(default_factory=list)  # no longer drifting
    already: list[tuple[int, str]] = field(default_factory=list)  # fixed before: not re-done

    def summary(self) -> str:
        parts = [f"{len(self.fixed)} fixed"]
        for items, what in ((self.gone, "no longer drifting"), (self.already, "already fixed"),
                            (self.not_fixed, "not fixed")):
            if items:
                parts.append(f"{len(items)} {what}")
        why = "; ".join(f"#{i}: {o}" for i, o in self.not_fixed[:5])
        run = f" (run {self.new_run_id})" if self.new_run_id else ""
        return ", ".join(parts) + run + (f": {why}" if why else "")


async def _locked(db: Database, work):
    lock = db.named_lock(LOCK)
    if not await asyncio.to_thread(lock.acquire, 0):
        raise Busy()
    try:
        return await work()
    finally:
        await asyncio.to_thread(lock.release)


async def run_now(db: Database, ctx: PlanningContext, connectors: dict[str, Connector], settings: Settings,
                  trigger: str) -> ReconcileReport:
    """Reconcile every target now, report only (fixing is "fix selected"). ``Busy`` when
    another run holds the lock."""
    return await _locked(db, lambda: reconcile(
        db, ctx, connectors, fix=False, max_removals=settings.reconcile_max_removals,
        retry=ReadRetry.from_settings(settings), trigger=trigger, keep=Keep.from_settings(settings)))


def _items(db: Database, run_id: int, item_ids: Collection[int]) -> list[ReconcileDrift]:
    with db.read() as session:
        if repository.run(session, run_id) is None:
            raise SelectionError(f"no reconcile run {run_id} (kept: the last runs only)")
        items = repository.run_items(session, run_id, ids=item_ids) if item_ids else []
    if not items:
        raise SelectionError(f"tick at least one drift item of run {run_id}")
    return items


def _key(item: ReconcileDrift) -> tuple[str, str, str, str, str]:
    return Drift(item.target, item.group, item.kind, item.employee_id, item.remote_id, change=item.change).key()


async def fix_selected(db: Database, ctx: PlanningContext, connectors: dict[str, Connector], settings: Settings,
                       run_id: int, item_ids: Collection[int], actor: str) -> Fixed:
    """Fix the selected items of stored run ``run_id`` (see the module's description)."""
    items = await asyncio.to_thread(_items, db, run_id, item_ids)
    out = Fixed(run_id)
    todo: dict[tuple, list[ReconcileDrift]] = {}
    for item in items:
        if item.fixed_at is not None:
            out.already.append((item.id, f"fixed before by {item.fixed_by}"))
        elif item.target not in connectors:
            out.not_fixed.append((item.id, f"target {item.target!r} is not configured in this process"))
        else:
            todo.setdefault(_key(item), []).append(item)
    report = None
    if todo:
        subset = {name: connectors[name] for name in sorted({i.target for group in todo.values() for i in group})}
        report = await _locked(db, lambda: reconcile(
            db, ctx, subset, fix=True, max_removals=settings.reconcile_max_removals,
            retry=ReadRetry.from_settings(settings), trigger=actor, keep=Keep.from_settings(settings),
            only=set(todo)))
        out.new_run_id = report.run_id
        _sort(out, todo, report)
    await asyncio.to_thread(_mark, db, out, items, actor)
    return out


def _sort(out: Fixed, todo: dict[tuple, list[ReconcileDrift]], report: ReconcileReport) -> None:
    found = {d.key(): d for d in report.drift}
    unread = {e.split(":", 1)[0] for e in report.errors}  # "<target>: what could not be read or done"
    policy_failed = any(e.startswith("policy drift could not be computed") for e in report.errors)
    run = report.run_id
    for key, items in todo.items():
        d = found.get(key)
        for item in items:
            if d is not None and d.fixed:
                out.fixed.append((item.id, f"fixed in run {run}: {d.action}"))
            elif d is not None:
                out.not_fixed.append((item.id, f"not fixed in run {run}: {d.action or 'nothing done'}"))
            elif item.target in unread or (item.kind == Kind.POLICY and policy_failed):
                out.not_fixed.append((item.id, f"not checked: run {run} could not read all of {item.target}"))
            else:
                out.gone.append((item.id, f"no longer drifting when run {run} read {item.target}"))


def _mark(db: Database, out: Fixed, items: list[ReconcileDrift], actor: str) -> None:
    """Each item with what happened; resolved (fixed or gone) items get ``fixed_at``; audited."""
    now = utcnow()
    resolved = dict(out.fixed + out.gone)
    outcome = dict(out.fixed + out.gone + out.not_fixed + out.already)
    by_id = {i.id: i for i in items}
    with db.transaction() as session:
        for row in repository.run_items(session, out.run_id, ids=[i for i in outcome if i not in dict(out.already)],
                                        lock=True):
            row.outcome = outcome[row.id]
            if row.id in resolved and row.fixed_at is None:
                row.fixed_at, row.fixed_by = now, actor[:200]
        append(session, "reconcile.items_fixed", f"run:{out.run_id}", by=actor, run_id=out.run_id,
               new_run_id=out.new_run_id, items=[
                   {"id": i, "target": by_id[i].target, "group": by_id[i].group, "kind": by_id[i].kind,
                    "employee_id": by_id[i].employee_id, "remote_id": by_id[i].remote_id, "outcome": o}
                   for i, o in list(outcome.items())[:1000]])
