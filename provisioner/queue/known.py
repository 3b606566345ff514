"""What the service knows exists in targets, loaded once per worker round and written back in
bulk: a round settles hundreds of operations, and one query per operation would dominate."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.orm import Session

from provisioner.identities import repository as identities
from provisioner.identities.models import Identity, TargetAccount
from provisioner.planner import repository as plans
from provisioner.queue.jobs import Job
from provisioner.targets.contract import OpKind, OpResult
from provisioner.targets.specs import MANAGER_LINK


class KnownState:
    """The people and their accounts are loaded on first use (a round of group additions needs
    neither); their memberships and latest plans at once."""

    def __init__(self, session: Session, identity_ids: list[str], *,
                 groups: Collection[str | None] | None = None) -> None:
        """``groups``: the only group keys this round adds or removes (None: any)."""
        self.session = session
        self._ids = identity_ids
        self._people: dict[str, Identity] | None = None
        self._accounts: dict[tuple[str, str], TargetAccount] | None = None
        self._groups = None if groups is None else {g for g in groups if g is not None}
        self.members = identities.membership_keys(session, identity_ids, groups=self._groups)
        self.latest_plan = plans.latest_plan_ids(session, identity_ids)
        self._group_ids: dict[str, dict[str, str]] = {}
        self._added: list[dict] = []
        self._removed: list[tuple[str, str, str]] = []

    @property
    def people(self) -> dict[str, Identity]:
        if self._people is None:
            self._people = identities.identities_by_id(self.session, self._ids)
        return self._people

    @property
    def accounts(self) -> dict[tuple[str, str], TargetAccount]:
        if self._accounts is None:
            self._accounts = identities.accounts_by_identity(self.session, self._ids)
        return self._accounts

    def account(self, identity_id: str, target: str) -> TargetAccount | None:
        return self.accounts.get((identity_id, target))

    def add_account(self, account: TargetAccount) -> None:
        self.session.add(account)
        self.accounts[(account.identity_id, account.target)] = account

    def drop_account(self, identity_id: str, target: str) -> None:
        account = self.accounts.pop((identity_id, target), None)
        if account is not None:
            self.session.delete(account)

    def group_remote_id(self, target: str, group_key: str) -> str | None:
        if target not in self._group_ids:
            self._group_ids[target] = identities.target_groups(self.session, target)
        return self._group_ids[target].get(group_key)

    def _loaded(self, group_key: str) -> None:
        if self._groups is not None and group_key not in self._groups:
            raise RuntimeError(f"memberships of group {group_key!r} were not loaded for this round")

    def add_membership(self, identity_id: str, target: str, group_key: str, now: datetime) -> None:
        self._loaded(group_key)
        key = (identity_id, target, group_key)
        if key in self.members:
            return
        self.members.add(key)
        if key in self._removed:
            self._removed.remove(key)  # its row was never deleted: keep it
            return
        self._added.append({"identity_id": identity_id, "target": target, "group_key": group_key,
                            "group_remote_id": self.group_remote_id(target, group_key), "created_at": now})

    def remove_membership(self, identity_id: str, target: str, group_key: str) -> None:
        self._loaded(group_key)
        key = (identity_id, target, group_key)
        if key not in self.members:
            return
        self.members.discard(key)
        kept = [row for row in self._added if (row["identity_id"], row["target"], row["group_key"]) != key]
        if len(kept) < len(self._added):
            self._added = kept  # added in this round: never written, nothing to delete
        else:
            self._removed.append(key)

    def flush(self) -> None:
        identities.delete_memberships(self.session, self._removed)
        identities.insert_memberships(self.session, self._added)
        self._added, self._removed = [], []


# -- what a settled operation means for the known state ---------------------------------------

def adopt_login(known: KnownState, identity_id: str, target: str, login: str | None, login_owner: str | None) -> None:
    """The login the login owner's account settled on (a suffix after a collision, a rename)
    becomes the person's, unless another person holds it."""
    identity = known.people.get(identity_id)
    if (identity is not None and login and identity.user_name != login and target == login_owner
            and not identities.user_name_taken(known.session, login, exclude_id=identity.id)):
        identity.user_name = identity.email = login
        identity.version += 1


def know_account(known: KnownState, job: Job, remote_id: str, login: str | None, now: datetime, *,
                 linked: bool, login_owner: str | None) -> None:
    """An account created (or an existing one linked) for the job's person."""
    if known.account(job.identity_id, job.target) is None:
        known.add_account(TargetAccount(
            identity_id=job.identity_id, target=job.target, remote_id=remote_id, login=login,
            enabled=not linked and bool(job.spec and job.spec.enabled), linked=linked,
            synced={} if linked else (job.fields or {}), created_at=now, updated_at=now))
    adopt_login(known, job.identity_id, job.target, login, login_owner)


def apply_outcome(known: KnownState, job: Job, result: OpResult, now: datetime, login_owner: str | None) -> None:
    """A succeeded operation's effect on what the service knows of the target."""
    kind = job.kind
    if kind == OpKind.CREATE_ACCOUNT and result.remote_id:
        know_account(known, job, result.remote_id, result.login or (job.spec.login if job.spec else None), now,
                     linked=False, login_owner=login_owner)
        return
    if kind == OpKind.ADD_MEMBER and job.group_key:
        known.add_membership(job.identity_id, job.target, job.group_key, now)
        return
    if kind == OpKind.REMOVE_MEMBER and job.group_key:
        known.remove_membership(job.identity_id, job.target, job.group_key)
        return
    account = known.account(job.identity_id, job.target)  # (loads the round's accounts)
    if account is None:
        return
    if kind in (OpKind.ENABLE_ACCOUNT, OpKind.DISABLE_ACCOUNT):
        account.enabled, account.updated_at = kind == OpKind.ENABLE_ACCOUNT, now
    elif kind == OpKind.UPDATE_ACCOUNT:
        kept = {k: v for k, v in (account.synced or {}).items() if k == MANAGER_LINK}
        account.synced, account.updated_at = {**(job.fields or {}), **kept}, now
        if job.spec is not None and job.spec.rename:  # the account now holds the new login
            account.login = job.spec.login
            adopt_login(known, job.identity_id, job.target, job.spec.login, login_owner)
    elif kind in (OpKind.SET_MANAGER, OpKind.CLEAR_MANAGER):
        account.synced, account.updated_at = {**(account.synced or {}), **(job.fields or {})}, now
    elif kind == OpKind.DELETE_ACCOUNT:
        known.drop_account(job.identity_id, job.target)
