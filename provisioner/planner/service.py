"""Desired state (policies + lifecycle state) against what the service knows exists in each
target gives a plan: the operations that make the target match.

- Joiner: create (or link) the account, then add it to its groups.
- Mover: update changed attributes, add the new groups, remove what no longer applies.
- Leaver: disable the account, revoke sign-in sessions, remove every managed membership, then
  read the target back to prove no access remains.
- Leave of absence: disable and revoke sessions; memberships follow the policies' ``states``.
- Rehire / return: re-enable and re-grant.

Only memberships in managed groups (declared in ``targets/``) are ever removed: known
memberships are recorded only for those. The planner never talks to a target.

Planning is set-based: :func:`plan_many` reads what it needs for a whole set of people at once
(accounts, known memberships, creates under way, the policy groups), works out each person's
plan with the pure :func:`decide` and stores plans, operations and audit records in bulk. One
person (:func:`plan_identity`, :func:`compute`) is the same code with a set of one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from provisioner.audit.service import Entry, append_many
from provisioner.change_control import approvals_planning as change_control
from provisioner.change_control.approvals_gate import Gate, gate, rules_for
from provisioner.clock import utcnow
from provisioner.db import insert_rows, reserve_ids
from provisioner.directory import service as directory
from provisioner.identities import repository as identities
from provisioner.identities.lifecycle import State
from provisioner.identities.models import Identity, TargetAccount
from provisioner.identities.naming import RENAME
from provisioner.identities.service import Naming, attributes_of
from provisioner.planner.models import Plan
from provisioner.policies.evaluate import desired_groups
from provisioner.policies.schemas import Policy
from provisioner.queue import repository as queue
from provisioner.queue.models import Operation, OpStatus, Priority
from provisioner.targets.config import Deprovision, TargetConfig
from provisioner.targets.contract import OpKind
from provisioner.targets.specs import MANAGER_LINK, changed

if TYPE_CHECKING:
    from provisioner.change_control.holds.service import HoldPolicy


@dataclass
class PlanningContext:
    policies: list[Policy]
    targets: dict[str, TargetConfig]
    contract_end_timezone: str = "UTC"  # end_date ends access at midnight after it, here
    # Mass-change holds screening each batch of operations (None: nothing is held).
    holds: HoldPolicy | None = None

    @property
    def naming(self) -> Naming:
        owner = self.targets.get(self.login_owner or "")
        if owner is None:
            return Naming()
        accounts = owner.accounts
        followers = {name for name, t in self.targets.items()
                     if t.kind == "scim" and t.effective_mapping().get("userName") == "{login}"}
        return Naming(accounts.login_template, accounts.domain,
                      frozenset(login.casefold() for login in accounts.reserved_logins),
                      accounts.on_name_change, self.login_owner, frozenset({self.login_owner, *followers}))

    @property
    def login_owner(self) -> str | None:
        """The target whose account name is the person's login (Entra ID's UPN): other
        targets' accounts are created after it, with the login it settled on."""
        return next((name for name, t in self.targets.items() if t.kind == "entra"), None)

    def managed(self) -> dict[str, list[str]]:
        return {name: t.managed_group_names() for name, t in self.targets.items()}


@dataclass
class PlannedOp:
    target: str
    kind: OpKind
    group_key: str | None = None
    reason: str = ""
    not_before: datetime | None = None  # deferred (delete N days after disabling)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlanResult:
    kind: str
    diff: dict[str, Any]
    ops: list[PlannedOp] = field(default_factory=list)
    plan: Plan | None = None
    under_way: dict[str, int] = field(default_factory=dict)  # ids of creates still running, by target
    gate: Gate | None = None  # change control: grants waiting for a decision (change_control)


@dataclass
class Known:
    """What the service knows exists in the targets for one person, read before planning."""

    accounts: dict[str, TargetAccount] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    # Creates already attempted are never withdrawn (queue.cancel_open_for): a plan waits for them.
    under_way: dict[str, int] = field(default_factory=dict)
    decisions: list[Any] = field(default_factory=list)  # change control: approvals and SoD flags
    # Group additions being sent now (running: never withdrawn), per target: a plan does not send
    # them again (an app may store a member twice); the worker re-plans the person when they end.
    adding: dict[str, set[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    identity: Identity
    trigger: str
    previous_state: str | None = None
    immediate: bool = False
    cause: str | None = None  # the mass-change hold cause, when the trigger does not say it


def load_known(session: Session, ctx: PlanningContext, people: Sequence[Identity]) -> dict[str, Known]:
    """Accounts, known memberships, creates and group additions under way of these people:
    four queries."""
    ids = [p.id for p in people]
    known = {i: Known() for i in ids}
    for (identity_id, target), account in identities.accounts_by_identity(session, ids).items():
        known[identity_id].accounts[target] = account
    for identity_id, target, group in identities.membership_keys(session, ids):
        known[identity_id].groups.setdefault(target, set()).add(group)
    lacking = [i for i in ids if set(ctx.targets) - set(known[i].accounts)]
    for identity_id, target, op_id in queue.open_creates_for(session, lacking):
        known[identity_id].under_way[target] = op_id  # ordered by id: the newest wins
    if rules_for(ctx).active:
        for row in change_control.live_decisions(session, ids):
            known[row.identity_id].decisions.append(row)
    for identity_id, target, group, _op_id in queue.running_additions_for(session, ids):
        known[identity_id].adding.setdefault(target, set()).add(group)
    return known


def _plan_kind(state: str, previous: str | None, has_accounts: bool) -> str:
    if state == State.TERMINATED:
        return "leaver"
    if state == State.ON_LEAVE:
        return "leave"
    if previous == State.TERMINATED:
        return "rehire"
    if previous == State.ON_LEAVE and state == State.ACTIVE:
        return "return"
    if state == State.ACTIVE and not has_accounts:
        return "joiner"
    if state == State.PRE_HIRE:
        return "pre_hire"
    return "mover"


def compute(session: Session, ctx: PlanningContext, identity: Identity,
            previous_state: str | None = None,
            unclear: Collection[tuple[str, str]] = ()) -> PlanResult:
    """Work out the plan for one identity without storing anything (reads what is known of it)."""
    return decide(ctx, identity, load_known(session, ctx, [identity])[identity.id], previous_state, unclear)


def decide(ctx: PlanningContext, identity: Identity, known: Known, previous_state: str | None = None,
           unclear: Collection[tuple[str, str]] = ()) -> PlanResult:
    """The planning rules: the plan for one identity from what is known of it (no database).
    ``unclear`` are group additions whose outcome is unknown (counted as held): still granted,
    they are sent again."""
    attrs = attributes_of(identity)
    state = identity.state
    desired = desired_groups(ctx.policies, attrs, state)
    rules = rules_for(ctx)
    gated = None
    if rules.active:  # additions running now count as held: a conflicting grant must not slip past
        holding = {t: set(known.groups.get(t, ())) | set(known.adding.get(t, ()))
                   for t in {*known.groups, *known.adding}}
        gated = gate(rules, attrs, desired, holding, known.decisions, utcnow())
    if gated is not None:
        desired = gated.allowed  # what waits for an approver is not planned (removals never wait)
    known_accounts = known.accounts
    known_groups = known.groups
    kind = _plan_kind(state, previous_state, bool(known_accounts))
    under_way = known.under_way if set(ctx.targets) - set(known_accounts) else {}
    diff: dict[str, Any] = {"state": state, "targets": {}}
    ops: list[PlannedOp] = []
    for name, target in ctx.targets.items():
        managed = set(target.managed_group_names())
        want = {g for g in desired.get(name, {}) if g in managed}
        have = known_groups.get(name, set())
        adding = known.adding.get(name, set()) - have  # being sent now: not sent twice
        account = known_accounts.get(name)
        wants_account = state in (State.ACTIVE, State.ON_LEAVE)
        wants_enabled = state == State.ACTIVE
        mode = target.deprovision.mode if state == State.TERMINATED else "disable"
        t_ops: list[PlannedOp] = []
        if account is None and wants_account and name not in under_way:
            t_ops.append(PlannedOp(name, OpKind.CREATE_ACCOUNT, reason=f"{kind}: no account yet"))
        elif account is not None:
            if wants_enabled and not account.enabled:
                t_ops.append(PlannedOp(name, OpKind.ENABLE_ACCOUNT, reason=f"{kind}: re-enable"))
            if not wants_enabled and account.enabled and mode != "delete":
                t_ops.append(PlannedOp(name, OpKind.DISABLE_ACCOUNT, reason=f"{kind}: disable"))
                if target.revoke_sessions:
                    t_ops.append(PlannedOp(name, OpKind.REVOKE_SESSIONS, reason=f"{kind}: end sessions"))
            if state != State.TERMINATED and changed(identity, account.synced,
                                                     separate_manager=_writes_manager(target)):
                t_ops.append(PlannedOp(name, OpKind.UPDATE_ACCOUNT, reason="HR attributes changed"))
            elif state != State.TERMINATED and _renamed(ctx, name, identity, account):
                t_ops.append(PlannedOp(name, OpKind.UPDATE_ACCOUNT, reason="login renamed (on_name_change: rename)"))
        if wants_account and _writes_manager(target) and (account is not None or t_ops or name in under_way):
            t_ops.extend(_manager_link(name, identity, account))
        if account is not None or wants_account:
            for group in sorted(g for g in want & have if (name, g) in unclear and g not in known.adding.get(name, ())):
                t_ops.append(PlannedOp(name, OpKind.ADD_MEMBER, group,
                                       "sent again: an earlier addition's outcome is unclear"))
            for group in sorted(want - have - adding):
                policies = ", ".join(desired[name][group])
                t_ops.append(PlannedOp(name, OpKind.ADD_MEMBER, group, f"granted by {policies}"))
        for group in sorted(have - want):
            t_ops.append(PlannedOp(name, OpKind.REMOVE_MEMBER, group,
                                   "leaver" if state == State.TERMINATED else "no policy grants it"))
        if state == State.TERMINATED and account is not None:
            t_ops.extend(_deletion(name, target.deprovision, account))
            if any(op.not_before is None for op in t_ops) or kind == "leaver":
                t_ops.append(PlannedOp(name, OpKind.VERIFY_REVOKED, reason="prove no access remains",
                                       payload={"account_id": account.remote_id}))
        diff["targets"][name] = {
            "account": ("none" if account is None else ("enabled" if account.enabled else "disabled")),
            "desired_account": ("enabled" if wants_enabled else "deleted" if account is not None and mode == "delete"
                                else "disabled" if (wants_account or account) else "none"),
            "deprovision": target.deprovision.mode,
            "desired_groups": sorted(want), "known_groups": sorted(have),
            "add": sorted(want - have - adding) if (account is not None or wants_account) else [],
            "remove": sorted(have - want),
            "operations": [{"kind": op.kind.value, "group": op.group_key, "reason": op.reason,
                            **({"not_before": op.not_before.isoformat()} if op.not_before else {})}
                           for op in t_ops],
        }
        if adding:
            diff["targets"][name]["adding"] = sorted(adding)  # sent by an earlier plan, running now
        ops.extend(t_ops)
    diff["kind"] = kind
    if gated is not None and gated.waits:
        diff["awaiting_approval"] = gated.as_diff()
    return PlanResult(kind=kind, diff=diff, ops=ops, under_way=under_way, gate=gated)


def _renamed(ctx: PlanningContext, name: str, identity: Identity, account: TargetAccount) -> bool:
    """An account named by the login still holds the one a rename replaced (on_name_change: rename)."""
    if not identity.user_name or not account.login or account.login == identity.user_name:
        return False  # the usual case, decided without building the naming settings
    naming = ctx.naming
    return naming.on_name_change == RENAME and name in naming.login_targets
def _writes_manager(target: TargetConfig) -> bool:
    """Targets that write the manager as a reference of its own (Entra ID's manager/$ref)."""
    return target.kind == "entra" and target.manager


def _manager_link(name: str, identity: Identity, account: TargetAccount | None) -> list[PlannedOp]:
    """The manager HR names, written once the account exists (and the manager's: until then the
    operation waits, see ``queue.repository.release_manager_links``); cleared when HR clears it.
    A person named as their own manager is refused at intake; here it is no manager."""
    want = identity.manager_employee_id if identity.manager_employee_id != identity.employee_id else None
    have = (account.synced or {}).get(MANAGER_LINK) if account is not None else None
    if want == have:
        return []
    if want is None:
        return [PlannedOp(name, OpKind.CLEAR_MANAGER, reason="HR cleared the manager",
                          payload={"manager_employee_id": None})]
    return [PlannedOp(name, OpKind.SET_MANAGER, reason=f"manager {want}" + (f" (was {have})" if have else ""),
                      payload={"manager_employee_id": want})]


def _deletion(name: str, deprovision: Deprovision, account: TargetAccount) -> list[PlannedOp]:
    """The leaver's account deletion, per the target's ``deprovision`` mode: at once, or
    ``delete_after_days`` after it was disabled (a rehire before then cancels it)."""
    if deprovision.mode == "delete":
        return [PlannedOp(name, OpKind.DELETE_ACCOUNT, reason="leaver: deprovision mode delete")]
    if deprovision.mode == "disable_then_delete":
        since = account.updated_at if not account.enabled and account.updated_at else utcnow()
        return [PlannedOp(name, OpKind.DELETE_ACCOUNT,
                          reason=f"leaver: delete {deprovision.delete_after_days} days after disabling",
                          not_before=since + timedelta(days=deprovision.delete_after_days))]
    return []


def plan_identity(session: Session, ctx: PlanningContext, identity: Identity, *, trigger: str,
                  previous_state: str | None = None, immediate: bool = False) -> PlanResult:
    """Compute, store and enqueue the plan; earlier not-yet-running work is superseded."""
    return plan_many(session, ctx, [PlanRequest(identity, trigger, previous_state, immediate)])[0]


def plan_many(session: Session, ctx: PlanningContext, requests: Sequence[PlanRequest]) -> list[PlanResult]:
    """Compute, store and enqueue the plans of many people (earlier not-yet-running work of
    theirs is superseded), in bulk: a fixed number of statements whatever the number of people.
    A person asked for twice is planned twice, in order (each plan supersedes the one before)."""
    if len({r.identity.id for r in requests}) < len(requests):
        return [plan_many(session, ctx, [r])[0] for r in requests]
    if not requests:
        return []
    now = utcnow()
    session.flush()  # people created or changed in this transaction are rows before what refers to them
    people = [r.identity for r in requests]
    unclear = queue.cancel_open_for_many(session, [p.id for p in people], now)
    known = load_known(session, ctx, people)
    held: list[dict[str, Any]] = []
    for identity_id, pairs in unclear.items():
        # Maybe added (the answer never came): held until a removal or a resend settles it.
        for target, group in pairs:
            groups = known[identity_id].groups.setdefault(target, set())
            if group not in groups:
                groups.add(group)
                held.append({"identity_id": identity_id, "target": target, "group_key": group,
                             "group_remote_id": None, "created_at": now})
    identities.insert_memberships(session, held)
    results = [decide(ctx, r.identity, known[r.identity.id], r.previous_state, unclear.get(r.identity.id, ()))
               for r in requests]
    change_control.record(session, [(r.identity, r.trigger, result) for r, result in zip(requests, results, strict=True)
                                     if result.gate is not None], now)
    groups = directory.ensure_policy_groups(session, ctx.managed())
    directory.sync_memberships_many(
        session, {r.identity.id: {t: set(v["desired_groups"]) for t, v in result.diff["targets"].items()}
                  for r, result in zip(requests, results, strict=True)}, groups)
    rows = []
    for r, result, plan_id in zip(requests, results, reserve_ids(session, Plan, len(results)), strict=True):
        rows.append({"id": plan_id, "identity_id": r.identity.id, "trigger": r.trigger, "kind": result.kind,
                     "diff": result.diff, "created_at": now})
        result.plan = Plan(**rows[-1])  # as stored (inserted in bulk, not through the session)
    insert_rows(session, Plan, rows)
    _enqueue(session, ctx, requests, results, now)
    # A read-back with nothing of its target to wait for (the account was found disabled
    # already) is ready now; the others are released by the worker as their target's work ends.
    queue.release_verifications(session, [result.plan.id for result in results
                                          if any(op.kind == OpKind.VERIFY_REVOKED for op in result.ops)], now)
    append_many(session, [Entry("plan.created", r.identity.employee_id or r.identity.id, {
        "plan_id": result.plan.id, "trigger": r.trigger, "kind": result.kind,
        "operations": [[op.target, op.kind.value, op.group_key] for op in result.ops]})
        for r, result in zip(requests, results, strict=True)])
    return results


def _priority(kind: str, immediate: bool) -> int:
    if kind == "leaver":
        return Priority.IMMEDIATE_TERMINATE if immediate else Priority.LEAVER
    if kind == "leave":
        return Priority.LEAVER
    return Priority.NORMAL


_CREATES, _OWNED_CREATES, _REST = range(3)  # insert order: what is depended on goes in first


def _enqueue(session: Session, ctx: PlanningContext, requests: Sequence[PlanRequest],
             results: Sequence[PlanResult], now: datetime) -> None:
    """Insert the plans' operations in bulk (ids reserved first). Grants wait for the account: a create
    planned now, or one still under way from before; another target's create waits for the
    login owner's (a taken name gets a suffix there)."""
    phases: tuple[list[dict[str, Any]], ...] = ([], [], [])
    depends: list[tuple[dict[str, Any], dict[str, Any] | int]] = []
    for r, result in zip(requests, results, strict=True):
        plan_id = result.plan.id
        priority = _priority(result.kind, r.immediate)
        creates: dict[str, dict[str, Any] | int] = dict(result.under_way)
        rows: list[tuple[PlannedOp, dict[str, Any]]] = []
        for p in result.ops:
            row = {"plan_id": plan_id, "identity_id": r.identity.id, "target": p.target, "kind": p.kind.value,
                   "group_key": p.group_key, "payload": {"reason": p.reason, **p.payload}, "priority": priority,
                   "status": OpStatus.PENDING, "depends_on_id": None, "attempts": 0, "next_attempt_at": now,
                   "created_at": now}
            if p.not_before is not None:
                # Deferred: outside the plan, so the plan's read-back does not wait for it.
                row["plan_id"], row["next_attempt_at"] = None, max(now, p.not_before)
                row["payload"] = {**row["payload"], "plan_id": plan_id}
            if p.kind == OpKind.VERIFY_REVOKED:
                row["status"], row["priority"] = OpStatus.WAITING, min(priority, Priority.VERIFY)
            elif p.kind == OpKind.CREATE_ACCOUNT:
                creates[p.target] = row
            rows.append((p, row))
        owner = creates.get(ctx.login_owner) if ctx.login_owner else None
        for p, row in rows:
            create = creates.get(p.target)
            if create is not None and row is not create and p.kind != OpKind.VERIFY_REVOKED:
                row["status"] = OpStatus.WAITING
                depends.append((row, create))
                phases[_REST].append(row)
            elif row is create and owner is not None and row is not owner:
                row["status"] = OpStatus.WAITING
                depends.append((row, owner))
                phases[_OWNED_CREATES].append(row)
            else:
                phases[_CREATES if row is create else _REST].append(row)
    ordered = [row for rows in phases for row in rows]
    for row, op_id in zip(ordered, reserve_ids(session, Operation, len(ordered)), strict=True):
        row["id"] = op_id
    for row, on in depends:
        row["depends_on_id"] = on if isinstance(on, int) else on["id"]
    if ctx.holds is not None:  # destructive work past a cause's thresholds is inserted held
        ctx.holds.screen(session, ordered, {r.identity.id: r.cause or r.trigger for r in requests}, now,
                         {r.identity.id: result.kind for r, result in zip(requests, results, strict=True)})
    insert_rows(session, Operation, ordered)
