"""The one small typed contract every connector implements.

A connector turns the service's operations into calls on one remote system and maps that
system's answers, in one place, to the service's own outcomes (done, transient, not found,
exists, bad request, stop). It never decides what to do about an outcome: the worker alone
decides retry, link, skip or halt (the split authentik's outgoing sync makes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class OpKind(StrEnum):
    CREATE_ACCOUNT = "create_account"
    UPDATE_ACCOUNT = "update_account"
    ENABLE_ACCOUNT = "enable_account"
    DISABLE_ACCOUNT = "disable_account"
    REVOKE_SESSIONS = "revoke_sessions"
    DELETE_ACCOUNT = "delete_account"
    ADD_MEMBER = "add_member"
    REMOVE_MEMBER = "remove_member"
    SET_MANAGER = "set_manager"  # PUT /users/{id}/manager/$ref (Entra ID), once the manager's account exists
    CLEAR_MANAGER = "clear_manager"  # DELETE /users/{id}/manager/$ref
    VERIFY_REVOKED = "verify_revoked"  # a read-back, handled by the worker through read_account


class Outcome(StrEnum):
    DONE = "done"
    TRANSIENT = "transient"  # retry later (429, 5xx, timeouts, dropped connections)
    NOT_FOUND = "not_found"  # the object (account, group, membership) is not there
    EXISTS = "exists"  # already there (membership, or a unique value like the login is taken)
    BAD_REQUEST = "bad_request"  # the remote refused this operation; retrying will not help
    STOP = "stop"  # the target as a whole refuses us (credentials, permissions): halt it


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What an account should look like in a target, built from HR-owned attributes."""

    employee_id: str
    login: str  # userPrincipalName / userName candidate (the connector may not change it)
    mail_nickname: str
    display_name: str
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    department: str | None = None
    job_title: str | None = None
    office_location: str | None = None
    cost_center: str | None = None
    employee_type: str | None = None
    manager_remote_id: str | None = None
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    # The person's HR attributes (JSON values) for a target's attribute mapping to read
    # (Entra ID: provisioner.targets.entra.mapping); empty: the fields above are used.
    hr: dict[str, Any] = field(default_factory=dict)
    rename: bool = False  # an update that moves the account to ``login`` (on_name_change: rename)


@dataclass(frozen=True, slots=True)
class TargetOp:
    """One operation handed to a connector."""

    op_id: int
    kind: OpKind
    account_id: str | None = None  # the target's id for the account (None for create)
    group_id: str | None = None  # the target's id for the group
    account: AccountSpec | None = None
    manager_id: str | None = None  # SET_MANAGER: the target's id for the manager's account


@dataclass(slots=True)
class OpResult:
    op_id: int
    outcome: Outcome
    remote_id: str | None = None  # set on a successful create
    login: str | None = None
    detail: str = ""
    retry_after: float | None = None  # seconds, from Retry-After when the remote sent one
    status_code: int | None = None


@dataclass(slots=True)
class AccountState:
    """A read-back of one account: used for verification, drift and evidence."""

    remote_id: str
    exists: bool
    enabled: bool | None
    group_ids: set[str]  # direct memberships, limited to the groups asked about
    raw: dict[str, Any] = field(default_factory=dict)
    # With ``read_accounts(..., all_groups=True)``: every direct group membership the account
    # holds (group id -> display name, "" when the target gave none), or None when the target
    # could not list them (then only ``group_ids`` is known); ``groups_source`` says how they
    # were read (e.g. "memberOf", "User.groups", "Groups filter", "managed groups only").
    all_groups: dict[str, str] | None = None
    groups_source: str = ""
    # With ``all_groups=True``: this account could not be read (the others were); the caller
    # retries it alone instead of failing every account of the call.
    error: TargetError | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Who an account in a target is, as the target says: for reports that name accounts."""

    remote_id: str
    login: str | None  # Entra ID userPrincipalName / SCIM userName
    display_name: str | None
    employee_id: str | None  # Entra ID employeeId / SCIM externalId
    enabled: bool | None


@dataclass(slots=True)
class TargetHealth:
    name: str
    kind: str
    reachable: bool
    credentials_ok: bool
    capabilities: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


class TargetError(Exception):
    """A whole call (not one operation of a batch) failed; carries the mapped outcome."""

    def __init__(
        self,
        outcome: Outcome,
        detail: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.detail = detail
        self.retry_after = retry_after
        self.status_code = status_code


class Connector(Protocol):
    """What the worker, planner and evidence code may ask of any target."""

    name: str
    kind: str

    async def apply(self, ops: Sequence[TargetOp]) -> list[OpResult]:
        """Carry out operations, packed as few calls as the remote allows.

        Returns exactly one result per operation, in any order, matched by ``op_id``; a
        failure of one operation never raises. Raises ``TargetError`` only when nothing could
        be sent at all.
        """
        ...

    async def find_account(self, spec: AccountSpec) -> tuple[str, str | None] | None:
        """Match before create: the account already holding this person's employee id (or
        login), as ``(remote_id, login)``, or None."""
        ...

    async def find_accounts(self, specs: Sequence[AccountSpec]) -> dict[str, tuple[str, str | None]]:
        """``find_account`` for many people, by employee id, in as few calls as possible."""
        ...

    async def read_account(self, remote_id: str, group_ids: Sequence[str]) -> AccountState:
        """Read back one account and which of ``group_ids`` it is a direct member of."""
        ...

    async def read_accounts(
        self, remote_ids: Sequence[str], group_ids: Sequence[str], *, all_groups: bool = False
    ) -> dict[str, AccountState]:
        """Read back several accounts in as few calls as the remote allows; with
        ``all_groups`` also every direct group membership (``AccountState.all_groups``)."""
        ...

    async def resolve_groups(self, keys: Sequence[str]) -> dict[str, str]:
        """Map declared group names (or ids) to the target's group ids; missing names absent."""
        ...

    async def group_member_ids(self, group_id: str) -> set[str]:
        """All direct member ids of one group (for drift reconciliation)."""
        ...

    async def describe_accounts(self, remote_ids: Sequence[str]) -> dict[str, AccountInfo]:
        """Login, display name, employee id and enabled flag of accounts, in as few calls as the
        remote allows; ids that are not accounts (absent, or another kind of object) are left out."""
        ...

    async def check(self) -> TargetHealth:
        """Connect and report capabilities without changing anything."""
        ...

    async def aclose(self) -> None: ...
