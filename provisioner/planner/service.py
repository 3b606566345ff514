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
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.directory import service as directory
from provisioner.identities import repository as identities
from provisioner.identities.lifecycle import State
from provisioner.identities.models import Identity, TargetAccount
from provisioner.identities.service import Naming, attributes_of
from provisioner.planner.models import Plan
from provisioner.policies.evaluate import desired_groups
from provisioner.policies.schemas import Policy
from provisioner.queue import repository as queue
from provisioner.queue.models import Operation, OpStatus, Priority
from provisioner.targets.config import Deprovision, TargetConfig
from provisioner.targets.contract import OpKind
from provisioner.targets.specs import account_fields


@dataclass
class PlanningContext:
    policies: list[Policy]
    targets: dict[str, TargetConfig]
    contract_end_timezone: str = "UTC"  # end_date ends access at midnight after it, here

    @property
    def naming(self) -> Naming:
        owner = self.targets.get(self.login_owner or "")
        return Naming(owner.accounts.login_template, owner.accounts.domain) if owner is not None else Naming()

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
    under_way: dict[str, Operation] = field(default_factory=dict)  # creates still running, by target


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
    """Work out the plan for one identity without storing anything. ``unclear`` are group
    additions whose outcome is unknown (counted as held): still granted, they are sent again."""
    attrs = attributes_of(identity)
    state = identity.state
    desired = desired_groups(ctx.policies, attrs, state)
    known_accounts = identities.accounts(session, identity.id)
    known_groups = identities.memberships(session, identity.id)
    kind = _plan_kind(state, previous_state, bool(known_accounts))
    # Creates already attempted are never withdrawn (queue.cancel_open_for): wait for them.
    under_way = queue.open_creates(session, identity.id) if set(ctx.targets) - set(known_accounts) else {}
    diff: dict[str, Any] = {"state": state, "targets": {}}
    ops: list[PlannedOp] = []
    for name, target in ctx.targets.items():
        managed = set(target.managed_group_names())
        want = {g for g in desired.get(name, {}) if g in managed}
        have = known_groups.get(name, set())
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
            if state != State.TERMINATED and account_fields(identity) != (account.synced or {}):
                t_ops.append(PlannedOp(name, OpKind.UPDATE_ACCOUNT, reason="HR attributes changed"))
        if account is not None or wants_account:
            for group in sorted(g for g in want & have if (name, g) in unclear):
                t_ops.append(PlannedOp(name, OpKind.ADD_MEMBER, group,
                                       "sent again: an earlier addition's outcome is unclear"))
            for group in sorted(want - have):
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
            "add": sorted(want - have) if (account is not None or wants_account) else [],
            "remove": sorted(have - want),
            "operations": [{"kind": op.kind.value, "group": op.group_key, "reason": op.reason,
                            **({"not_before": op.not_before.isoformat()} if op.not_before else {})}
                           for op in t_ops],
        }
        ops.extend(t_ops)
    diff["kind"] = kind
    return PlanResult(kind=kind, diff=diff, ops=ops, under_way=under_way)


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
    now = utcnow()
    unclear = queue.cancel_open_for(session, identity.id, now)
    for target, group in unclear:
        # Maybe added (the answer never came): held until a removal or a resend settles it.
        identities.add_membership(session, identity.id, target, group, None, now)
    if unclear:
        session.flush()
    result = compute(session, ctx, identity, previous_state, unclear)
    groups = directory.ensure_policy_groups(session, ctx.managed())
    directory.sync_memberships(session, identity.id,
                               {t: set(v["desired_groups"]) for t, v in result.diff["targets"].items()},
                               groups)
    plan = Plan(identity_id=identity.id, trigger=trigger, kind=result.kind, diff=result.diff, created_at=now)
    session.add(plan)
    session.flush()
    result.plan = plan
    if result.kind == "leaver":
        priority = Priority.IMMEDIATE_TERMINATE if immediate else Priority.LEAVER
    elif result.kind == "leave":
        priority = Priority.LEAVER
    else:
        priority = Priority.NORMAL
    _enqueue(session, ctx, plan, identity, result, priority, now)
    if any(op.kind == OpKind.VERIFY_REVOKED for op in result.ops):
        # A read-back with nothing of its target to wait for (the account was found disabled
        # already) is ready now; the others are released by the worker as their target's work ends.
        queue.release_verifications(session, [plan.id], now)
    append(session, "plan.created", identity.employee_id or identity.id, plan_id=plan.id,
           trigger=trigger, kind=result.kind,
           operations=[[op.target, op.kind.value, op.group_key] for op in result.ops])
    return result


def _enqueue(session: Session, ctx: PlanningContext, plan: Plan, identity: Identity, result: PlanResult,
             priority: int, now: datetime) -> None:
    # Grants wait for the account: a create planned now, or one still under way from before.
    creates: dict[str, Operation] = dict(result.under_way)
    rows: list[Operation] = []
    for p in result.ops:
        op = Operation(plan_id=plan.id, identity_id=identity.id, target=p.target, kind=p.kind.value,
                       group_key=p.group_key, payload={"reason": p.reason, **p.payload}, priority=priority,
                       status=OpStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now)
        if p.not_before is not None:
            # Deferred: outside the plan, so the plan's read-back does not wait for it.
            op.plan_id, op.next_attempt_at = None, max(now, p.not_before)
            op.payload = {**op.payload, "plan_id": plan.id}
        if p.kind == OpKind.VERIFY_REVOKED:
            op.status, op.priority = OpStatus.WAITING, min(priority, Priority.VERIFY)
        elif p.kind == OpKind.CREATE_ACCOUNT:
            creates[p.target] = op
        rows.append(op)
    session.add_all(rows)
    session.flush()
    owner = creates.get(ctx.login_owner) if ctx.login_owner else None
    for op in rows:
        create = creates.get(op.target)
        if create is not None and op is not create and op.kind != OpKind.VERIFY_REVOKED:
            op.depends_on_id, op.status = create.id, OpStatus.WAITING
        elif op is create and owner is not None and op is not owner:
            # The login is settled by the login owner's create (a taken name gets a suffix there).
            op.depends_on_id, op.status = owner.id, OpStatus.WAITING
