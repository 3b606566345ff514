"""What one read-back of a leaver's account found, and the incidents it opens or closes.

The worker reads the target back after a leaver's revocation (``verify_revoked``) and records it
here. What ``verified`` means: the account is gone, or it is disabled and holds no membership in
any **managed** group (the groups the service grants and removes). Every other direct group
membership the account still holds is listed in ``other_groups`` (names and ids) and flagged
with ``unmanaged_access``; it does not make ``verified`` false, because the service never removes
memberships it does not manage: a person must look (and the evidence shows it).

A read-back in a later plan that finds access again for a leaver whose revocation in that target
was already verified opens a ``RevocationIncident`` (detected by "read-back"); reconciliation opens
its own for drift it finds. A verified read-back closes the person's open incidents in that
target that belong to its plan or an earlier one (fixed by "read-back").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import Entry
from provisioner.evidence import repository
from provisioner.evidence.models import RevocationCheck, RevocationIncident
from provisioner.targets.contract import AccountState

READ_BACK = "read-back"


def readback_of(account_id: str | None, state: AccountState | None,
                managed: dict[str, str]) -> tuple[bool, dict[str, Any]]:
    """``(verified, readback)`` from a read-back; ``managed`` maps managed group ids to names."""
    exists = bool(state and state.exists)
    enabled = bool(state and state.enabled)
    held = state.group_ids if state and exists else set()
    remaining = sorted(managed[g] for g in held if g in managed)
    listing = (state.all_groups if exists else {}) if state is not None else None
    other = sorted(({"id": gid, "name": name} for gid, name in (listing or {}).items() if gid not in managed),
                   key=lambda g: (g["name"].lower(), g["id"]))
    verified = state is not None and (not exists or (not enabled and not remaining))
    return verified, {
        "account_id": account_id, "exists": exists, "enabled": enabled if exists else None,
        "managed_groups_checked": len(managed), "groups_remaining": remaining,
        "other_groups": other, "unmanaged_access": bool(other),
        "all_groups_read": listing is not None,
        "groups_read": (state.groups_source if state is not None and exists else "") or
                       ("managed groups only" if listing is None else ""),
    }


def access_left(readback: dict[str, Any]) -> str:
    """What a read-back that is not verified found, in words ("still enabled; still in groups X, Y")."""
    found = []
    if readback.get("exists") and readback.get("enabled"):
        found.append("still enabled")
    if readback.get("groups_remaining"):
        found.append("still in groups " + ", ".join(readback["groups_remaining"]))
    return "; ".join(found) or "the account could not be read back"


def record(session: Session, *, identity_id: str, subject: str, target: str, plan_id: int | None,
           verified: bool, readback: dict[str, Any], now: datetime, audit: list[Entry]) -> None:
    """Store one read-back, and open or close incidents as it says."""
    session.add(RevocationCheck(identity_id=identity_id, plan_id=plan_id, target=target,
                                verified=verified, readback=readback, checked_at=now))
    audit.append(Entry("revocation.check", subject,
                       {"target": target, "plan_id": plan_id, "verified": verified, **readback}))
    if verified:
        for incident in repository.open_incidents(session, identity_id, target, plan_id):
            incident.fixed_at, incident.fixed_by = now, READ_BACK
            incident.detail = {**(incident.detail or {}), "fixed_by_plan_id": plan_id}
            audit.append(Entry("revocation.incident_fixed", subject, {
                "incident_id": incident.id, "target": target, "kind": incident.kind, "plan_id": plan_id,
                "detected_at": incident.detected_at.isoformat(), "fixed_by": READ_BACK}))
        return
    if plan_id is None or not readback["exists"]:
        return
    earlier = repository.verified_before(session, identity_id, target, plan_id)
    if earlier is None:
        return  # the revocation itself is not verified yet: not an incident, remediation goes on
    if any(i.plan_id == plan_id for i in repository.open_incidents(session, identity_id, target, plan_id)):
        return  # already open for this plan (reconciliation's, or an earlier round's)
    kinds = []
    if readback["enabled"]:
        kinds.append(("account_enabled_elsewhere", {}))
    if readback["groups_remaining"]:
        kinds.append(("member_added_elsewhere", {"groups": readback["groups_remaining"]}))
    for kind, extra in kinds:
        incident = RevocationIncident(
            identity_id=identity_id, target=target, kind=kind, detected_at=now, detected_by=READ_BACK,
            plan_id=plan_id, detail={**extra, "account_id": readback["account_id"],
                                     "verified_before_at": earlier.checked_at.isoformat(),
                                     "verified_before_plan_id": earlier.plan_id})
        session.add(incident)
        audit.append(Entry("revocation.incident", subject, {
            "target": target, "kind": kind, "plan_id": plan_id, "detected_by": READ_BACK, **extra}))
