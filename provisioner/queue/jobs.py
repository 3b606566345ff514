"""Turn claimed operation rows into what a connector needs (a ``TargetOp``), reading the
service's own records: the account a target assigned, the group ids, the login to use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from provisioner.identities import repository as identities
from provisioner.identities.lifecycle import State
from provisioner.identities.naming import RENAME, candidate, login_local_part
from provisioner.identities.service import Naming, attributes_of
from provisioner.queue.models import Priority
from provisioner.queue.repository import Claimed
from provisioner.targets.contract import (
    AccountSpec,
    OpKind,
    OpResult,
    Outcome,
    TargetOp,
)
from provisioner.targets.specs import MANAGER_LINK, account_fields, account_spec


@dataclass
class Job:
    op_id: int
    kind: OpKind
    target: str
    identity_id: str
    employee_id: str | None
    plan_id: int | None
    attempts: int
    group_key: str | None
    payload: dict[str, Any]
    priority: int = Priority.NORMAL  # revocation work runs in the targets' revocation lane
    account_id: str | None = None
    spec: AccountSpec | None = None
    fields: dict[str, Any] | None = None  # account fields pushed by create/update
    pre: OpResult | None = None  # settled without calling the target
    verify_group_ids: dict[str, str] = field(default_factory=dict)  # remote id -> group key
    manager_id: str | None = None  # SET_MANAGER: the manager's account in the target

    def target_op(self, group_ids: dict[str, str]) -> TargetOp:
        return TargetOp(op_id=self.op_id, kind=self.kind, account_id=self.account_id,
                        group_id=group_ids.get(self.group_key) if self.group_key else None,
                        account=self.spec, manager_id=self.manager_id)


def build_jobs(session: Session, ops: list[Claimed], naming: Naming) -> list[Job]:
    jobs: list[Job] = []
    # Whole people only where an account is described (creates, updates); the rest need only
    # their employee id and account ids (a round of group additions reads no ORM objects).
    described = (OpKind.CREATE_ACCOUNT, OpKind.UPDATE_ACCOUNT)
    people = identities.identities_by_id(session, [op.identity_id for op in ops if op.kind in described])
    employee_ids = identities.employee_ids(session, [op.identity_id for op in ops if op.kind not in described])
    accounts = identities.account_refs(session, [op.identity_id for op in ops])
    managers = identities.manager_remote_ids(session, [
        (people[op.identity_id].manager_employee_id, op.target) for op in ops
        if op.kind in described and people[op.identity_id].manager_employee_id] + [
        (m, op.target) for op in ops if op.kind == OpKind.SET_MANAGER
        and (m := (op.payload or {}).get("manager_employee_id"))])
    for op in ops:
        identity = people.get(op.identity_id)
        kind = OpKind(op.kind)
        job = Job(op.id, kind, op.target, op.identity_id,
                  identity.employee_id if identity is not None else employee_ids[op.identity_id], op.plan_id,
                  op.attempts, op.group_key, dict(op.payload or {}), priority=op.priority)
        account = accounts.get((op.identity_id, op.target))
        if kind == OpKind.CREATE_ACCOUNT:
            if account is not None:
                job.pre = OpResult(op.id, Outcome.DONE, remote_id=account.remote_id,
                                   login=account.login, detail="account already known")
            else:
                suffix = int(job.payload.get("suffix", 1))
                login = identity.user_name if suffix == 1 and identity.user_name else candidate(
                    naming, login_local_part(naming.template, attributes_of(identity)), suffix)[0]
                job.fields = account_fields(identity)
                job.spec = account_spec(identity, login=login, enabled=identity.state == State.ACTIVE,
                                        manager_remote_id=managers.get((identity.manager_employee_id, op.target)))
        elif kind == OpKind.VERIFY_REVOKED:
            # The read-back names the account the plan revoked, even once it is deleted.
            job.account_id = account.remote_id if account is not None else job.payload.get("account_id")
        elif account is None:
            # Nothing to revoke where no account exists; a grant without an account cannot run.
            outcome = Outcome.NOT_FOUND
            job.pre = OpResult(op.id, outcome, detail=f"no account in {op.target} for this person")
        else:
            job.account_id = account.remote_id
            if kind in (OpKind.SET_MANAGER, OpKind.CLEAR_MANAGER):
                _manager_job(job, managers)
            elif kind == OpKind.UPDATE_ACCOUNT:
                job.fields = account_fields(identity)
                # Under on_name_change=rename the accounts named by the login take the new one.
                rename = (naming.on_name_change == RENAME and op.target in naming.login_targets
                          and bool(identity.user_name) and identity.user_name != account.login)
                # The rename's login was taken in the login owner: the next one (SCIM apps follow it).
                suffix = int(job.payload.get("suffix", 1)) if op.target == naming.target else 1
                login = (identity.user_name if suffix == 1 else candidate(
                    naming, login_local_part(naming.template, attributes_of(identity)), suffix)[0]) if rename else None
                job.spec = account_spec(identity, login=login or account.login or identity.user_name or "", rename=rename,
                                        manager_remote_id=managers.get((identity.manager_employee_id, op.target)))
        jobs.append(job)
    return jobs


def _manager_job(job: Job, managers: dict[tuple[str, str], str]) -> None:
    """The manager the plan asked for (its payload: a newer plan has its own operation). A
    manager without an account in the target yet: not found, and the operation waits for them."""
    manager = job.payload.get("manager_employee_id")
    job.fields = {MANAGER_LINK: manager}
    if job.kind == OpKind.CLEAR_MANAGER:
        return
    job.manager_id = managers.get((manager, job.target)) if manager else None
    if job.manager_id is None:
        job.pre = OpResult(job.op_id, Outcome.NOT_FOUND,
                           detail=f"manager {manager} has no account in {job.target} yet: "
                                  "the manager is set when their account is created")
