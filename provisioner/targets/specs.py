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
        rename=rename,
    )
