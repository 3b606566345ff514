"""Map an identity's HR-owned attributes to the account a target should hold."""

from __future__ import annotations

from typing import Any

from provisioner.identities.models import Identity
from provisioner.targets.contract import AccountSpec


def account_fields(identity: Identity) -> dict[str, Any]:
    """The HR-derived account attributes; compared with what was last pushed (movers)."""
    return {
        "display_name": identity.display_name,
        "given_name": identity.preferred_name or identity.given_name,
        "family_name": identity.family_name,
        "department": identity.department,
        "job_title": identity.title,
        "office_location": identity.location,
        "cost_center": identity.cost_center,
        "employee_type": identity.employment_type,
        "manager_employee_id": identity.manager_employee_id,
        # Read by attribute mappings (Entra ID's employeeHireDate, employeeLeaveDateTime, ...).
        "job_code": identity.job_code,
        "start_date": identity.start_date.isoformat() if identity.start_date else None,
        "end_date": identity.end_date.isoformat() if identity.end_date else None,
        "extra": dict(identity.extra or {}),
    }


# What a target's account holds besides its mapped attributes (``TargetAccount.synced``):
# the manager link written by SET_MANAGER/CLEAR_MANAGER (Entra ID), kept across updates.
MANAGER_LINK = "manager_link"


def changed(identity: Identity, synced: dict[str, Any] | None, *, separate_manager: bool) -> bool:
    """Whether the HR-derived attributes differ from what was last pushed to the account;
    ``separate_manager``: the target writes the manager with its own operation."""
    now = account_fields(identity)
    before = {k: v for k, v in (synced or {}).items() if k != MANAGER_LINK}
    if separate_manager:
        now.pop("manager_employee_id", None)
        before.pop("manager_employee_id", None)
    return now != before


def hr_values(identity: Identity) -> dict[str, Any]:
    """The person's HR attributes as JSON values, for a target's attribute mapping."""
    return {
        "employee_id": identity.employee_id or identity.id,
        "given_name": identity.preferred_name or identity.given_name,
        "family_name": identity.family_name,
        "preferred_name": identity.preferred_name,
        "display_name": identity.display_name,
        "department": identity.department,
        "job_code": identity.job_code,
        "title": identity.title,
        "location": identity.location,
        "cost_center": identity.cost_center,
        "manager_employee_id": identity.manager_employee_id,
        "employment_type": identity.employment_type,
        "start_date": identity.start_date.isoformat() if identity.start_date else None,
        "end_date": identity.end_date.isoformat() if identity.end_date else None,
        "extra": dict(identity.extra or {}),
    }


def account_spec(identity: Identity, *, login: str, manager_remote_id: str | None = None,
                 enabled: bool = True, rename: bool = False) -> AccountSpec:
    fields = account_fields(identity)
    local = login.split("@", 1)[0]
    return AccountSpec(
        employee_id=identity.employee_id or identity.id,
        login=login,
        mail_nickname=local[:64] or (identity.employee_id or "user"),
        display_name=fields["display_name"] or login,
        given_name=fields["given_name"],
        family_name=fields["family_name"],
        email=login,
        department=fields["department"],
        job_title=fields["job_title"],
        office_location=fields["office_location"],
        cost_center=fields["cost_center"],
        employee_type=fields["employee_type"],
        manager_remote_id=manager_remote_id,
        enabled=enabled,
        hr=hr_values(identity),
        rename=rename,
    )
