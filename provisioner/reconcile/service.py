"""Drift reconciliation: read each managed group and account back from the target and compare
with what the service knows. Changes made behind the service's back are reported (each line
naming the account), and with ``fix`` corrected: unknown members leave the managed groups
(``unknown_members: remove``, verified by reading the group back) and the people concerned are
re-planned. Leavers' accounts the service has no link for are reported, never changed.

A target that can say what changed (Entra ID: Graph delta queries) is read whole the first
time and through its changes after that (``full`` reads it whole again); the drift is the same.

Modules: :mod:`.drift` finds drift in one target, :mod:`.changes` reads a target through its
changes, :mod:`.fix` acts on it and records the run, :mod:`.report` is the outcome,
:mod:`.schedule` the scheduled run (one across processes), :mod:`.repository` every query."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.identities import repository as identities
from provisioner.planner.service import PlanningContext
from provisioner.queue.group_ids import GroupIds
from provisioner.reconcile import repository
from provisioner.reconcile.drift import target_drift
from provisioner.reconcile.fix import Chosen, record, remove_unknown_members
from provisioner.reconcile.report import Drift, Kind, ReconcileReport
from provisioner.reconcile.repository import Known, Person
from provisioner.reconcile.retry import ReadRetry
from provisioner.reconcile.runs import Keep, RunInfo
from provisioner.rollouts import repository as rollout_records
from provisioner.rollouts import service as rollouts
from provisioner.rollouts.fingerprint import fingerprint
from provisioner.rollouts.schemas import PolicyDriftItem
from provisioner.settings import Settings
from provisioner.targets.contract import Connector, Outcome, TargetError

__all__ = ["Drift", "Kind", "ReadRetry", "ReconcileReport", "reconcile"]

log = logging.getLogger(__name__)


MAX_REMOVALS = Settings.model_fields["reconcile_max_removals"].default


async def reconcile(db: Database, ctx: PlanningContext, connectors: dict[str, Connector], *,
                    fix: bool, max_removals: int = MAX_REMOVALS, retry: ReadRetry | None = None,
                    full: bool = False, trigger: str = "manual", keep: Keep | None = None,
                    only: Chosen = None) -> ReconcileReport:
    """``max_removals``: the most unknown members removed from one target in one run;
    ``retry``: how reads are retried (:class:`ReadRetry.from_settings`; its defaults otherwise);
    ``full``: read every target whole, not through its changes since the last run (:mod:`.changes`);
    ``trigger``: what started the run, stored with it (:mod:`.runs`, ``keep``: how much history);
    ``only``: with ``fix``, correct only these lines (:meth:`Drift.key`: "fix selected",
    :mod:`.on_demand`), the others are reported; policy drift then only of ``connectors``.

    A target, or a part of one (a group, a chunk of accounts), that cannot be read even after
    the retries is reported (``errors``: exit 2) and the run goes on with the rest."""
    started = utcnow()
    report = ReconcileReport()
    retry = retry or ReadRetry()
    retries_before = retry.retries
    resolver = GroupIds(db, ctx)
    knowns: dict[str, Known] = {}
    # Who the policies would now give or take a group: read from the database while the
    # targets are read (at company size it takes seconds; it needs nothing from them).
    policy = asyncio.ensure_future(asyncio.to_thread(_policy_items, db, ctx))
    for name, connector in connectors.items():
        target = ctx.targets[name]
        managed = target.managed_group_names()
        try:
            group_ids, readable = await _group_ids(db, resolver, name, connector, managed, retry, report)
            drift, errors, knowns[name] = await target_drift(db, name, connector, group_ids, readable, retry,
                                                              full=full)
        except TargetError as exc:
            report.errors.append(f"{name}: cannot read the target: {exc.detail}")
            log.error("reconcile: cannot read %s: %s", name, exc.detail,
                      extra={"target": name, "alert": "reconcile_unreachable"})
            continue
        except Exception as exc:  # never a traceback for the operator: reported, logged, the run goes on
            report.errors.append(f"{name}: reconciliation failed: {type(exc).__name__}: {exc}")
            log.exception("reconcile: %s failed", name, extra={"target": name, "alert": "reconcile_failed"})
            continue
        report.errors += errors
        for d in drift:
            if d.kind == Kind.ORPHAN and not d.action:
                d.action = "reported only: the service did not create or link it"
            elif d.kind == Kind.UNKNOWN_MEMBER and target.unknown_members == "report":
                d.action = "reported only (unknown_members: report)"
        if fix and target.unknown_members == "remove":
            chosen = drift if only is None else [d for d in drift if d.key() in only]
            await remove_unknown_members(db, name, connector, group_ids, chosen, report, max_removals, retry)
        report.drift += drift
    report.read_retries = retry.retries - retries_before
    report.drift += [d for d in _policy_drift(await _policy_result(policy, report), knowns)
                     if only is None or d.target in connectors]
    info = RunInfo(trigger, started, list(connectors), keep or Keep(), selected=only is not None)
    await asyncio.to_thread(record, db, ctx, report, fix, info, only)
    return report


async def _group_ids(db: Database, resolver: GroupIds, name: str, connector: Connector, managed: list[str],
                     retry: ReadRetry, report: ReconcileReport) -> tuple[dict[str, str], list[str]]:
    """The managed groups' ids (resolved, with retries) and the groups to reconcile. When names
    cannot be resolved, the groups resolved before are reconciled and the others reported; with
    none, the target cannot be read (``TargetError``)."""
    try:
        ids = await retry(name, "the managed groups' ids", partial(resolver.resolve, name, connector, managed))
        return ids, managed
    except TargetError as exc:
        if exc.outcome == Outcome.STOP:
            raise
        saved = await asyncio.to_thread(_saved_group_ids, db, name)
        if not any(g in saved for g in managed):
            raise
        missing = [g for g in managed if g not in saved]
        report.errors.append(f"{name}: cannot resolve managed group(s) {', '.join(map(repr, missing))}: "
                             f"{exc.detail}")
        log.error("reconcile: cannot resolve %s's groups %s: %s", name, missing, exc.detail,
                  extra={"target": name, "alert": "reconcile_unreadable"})
        readable = [g for g in managed if g in saved]
        return {g: saved[g] for g in readable}, readable


def _saved_group_ids(db: Database, target: str) -> dict[str, str]:
    with db.read() as session:
        return identities.target_groups(session, target)


PolicyItems = tuple[list[PolicyDriftItem], dict[str, Person], bool]


def _policy_items(db: Database, ctx: PlanningContext) -> PolicyItems:
    """People whose known access differs from what the policies now say (a policy changed
    without a rollout, or a rollout still held for approval), and whether it is held."""
    with db.read() as session:
        items = list(rollouts.policy_drift(session, ctx))
        people = repository.people_by_employee_id(session, [i.employee_id for i in items])
        # A rollout of this policy set waiting for approval is change control: --fix must not
        # apply it person by person behind the approver's back.
        held = bool(items) and rollout_records.held(session, fingerprint(ctx.policies, ctx.targets)) is not None
    return items, people, held


async def _policy_result(policy: asyncio.Future[PolicyItems], report: ReconcileReport) -> PolicyItems:
    try:
        return await policy
    except Exception as exc:  # never silent: the run reports it (exit 2)
        log.exception("reconcile: policy drift could not be computed", extra={"alert": "reconcile_policy_drift"})
        report.errors.append(f"policy drift could not be computed: {exc}")
        return [], {}, False


def _policy_drift(found: PolicyItems, knowns: dict[str, Known]) -> list[Drift]:
    """A line per person, target and group, naming the account from what the target said."""
    items, people, held = found
    lines: list[Drift] = []
    for item in items:
        person = people.get(item.employee_id)
        known = knowns.get(item.target)
        remote_id = known.remote_id_of(person.identity_id) if known and person else None
        account = known.accounts.get(remote_id) if known and remote_id else None
        lines.append(Drift(item.target, item.group, Kind.POLICY, item.employee_id, remote_id,
                           login=account.login if account else None,
                           display_name=item.display_name or (person.display_name if person else None),
                           change=item.change, identity_id=person.identity_id if person else None,
                           terminated=bool(person and person.terminated), held=held,
                           action="held: the policy rollout awaits approval" if held else ""))
    return lines
