"""What a reconciliation run found and did: drift lines that name the account, and the run's
outcome for the command line (table, JSON, exit code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Kind:
    """Drift kinds."""

    MEMBER_ADDED = "member_added_elsewhere"  # a person the service manages, in a group it did not grant
    MEMBER_REMOVED = "member_removed_elsewhere"  # a membership the service made is gone
    UNKNOWN_MEMBER = "unknown_member"  # an account the service has no link for, in a managed group
    ACCOUNT_DELETED = "account_deleted_elsewhere"
    ACCOUNT_ENABLED = "account_enabled_elsewhere"
    ACCOUNT_DISABLED = "account_disabled_elsewhere"
    ORPHAN = "orphan_account"  # an unlinked account carrying a leaver's employee id
    POLICY = "policy_drift"  # what the service knows differs from what the policies now say

    # Drift about a leaver that is access coming back: a revocation incident.
    INCIDENT = frozenset({MEMBER_ADDED, ACCOUNT_ENABLED})


@dataclass
class Drift:
    target: str
    group: str | None
    kind: str
    employee_id: str | None
    remote_id: str | None
    login: str | None = None  # Entra ID userPrincipalName / SCIM userName
    display_name: str | None = None
    change: str | None = None  # policy drift: "gain" or "lose"
    action: str = ""  # what --fix did about it
    identity_id: str | None = None  # the service's person, when it knows one
    terminated: bool = False  # the person is a leaver
    held: bool = False  # --fix leaves it alone (a policy rollout awaiting approval)
    fixed: bool = False  # the run corrected it (removed and read back, or the person re-planned)

    def key(self) -> tuple[str, str, str, str, str]:
        """What makes it the same drift in two runs: policy drift is a person's, the rest an
        account's (the remote id)."""
        who = self.employee_id if self.kind == Kind.POLICY else self.remote_id
        return self.target, self.kind, self.group or "", who or "", self.change or ""

    def name(self) -> str:
        """``Ada Lovelace <ada.lovelace@example.com>``, or what is known of it."""
        if self.display_name and self.login:
            return f"{self.display_name} <{self.login}>"
        return self.display_name or self.login or "(not an account the target could describe)"

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "group": self.group, "kind": self.kind, "employee_id": self.employee_id,
                "login": self.login, "display_name": self.display_name, "remote_id": self.remote_id,
                "change": self.change, "terminated": self.terminated, "action": self.action or None}


@dataclass
class ReconcileReport:
    drift: list[Drift] = field(default_factory=list)
    replanned: int = 0
    removed: int = 0  # unknown members removed and verified gone
    incidents: int = 0  # revocation incidents opened
    errors: list[str] = field(default_factory=list)
    read_retries: int = 0  # reads tried again after a transient failure (see retry.py)
    run_id: int | None = None  # the stored run (reconcile_runs), once recorded

    @property
    def exit_code(self) -> int:
        """2: a target could not be read (or a fix failed), so the answer is incomplete;
        1: drift found; 0: every target matches what the service knows."""
        if self.errors:
            return 2
        return 1 if self.drift else 0

    def to_json(self) -> dict[str, Any]:
        return {"drift": [d.to_json() for d in self.drift], "replanned": self.replanned,
                "removed": self.removed, "incidents": self.incidents, "errors": self.errors,
                "read_retries": self.read_retries, "run_id": self.run_id, "exit_code": self.exit_code}

    def audit_items(self, limit: int = 1000) -> list[list[Any]]:
        return [[d.target, d.group, d.kind, d.employee_id, d.remote_id, d.login, d.display_name, d.action]
                for d in self.drift[:limit]]
