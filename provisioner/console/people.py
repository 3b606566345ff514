"""A person as the console shows them, from the identities, intake, queue and approvals
repositories and services: attributes, state, accounts per target, groups and one timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.change_control import approvals_service
from provisioner.console import reconcile_view
from provisioner.evidence import repository as evidence
from provisioner.health import repository as health
from provisioner.identities import repository as identities
from provisioner.identities.service import attributes_of
from provisioner.intake import repository as intake
from provisioner.intake.models import EventStatus
from provisioner.policies.evaluate import desired_groups
from provisioner.queue import repository as queue


def _row(p) -> dict[str, Any]:
    return {"employee_id": p.employee_id, "display_name": p.display_name, "user_name": p.user_name,
            "state": p.state, "department": p.department}


def search(session: Session, text: str) -> list[dict[str, Any]]:
    return [_row(p) for p in identities.search(session, text)]


def unverified_leavers(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Leavers whose revocation is not yet proven in every target (the overview's number)."""
    ids = health.unverified_leaver_ids(session, now)
    return [_row(p) for p in sorted(identities.identities_by_id(session, ids).values(),
                                    key=lambda p: (p.display_name or "", p.id))]


def rejected_events(session: Session) -> list[dict[str, Any]]:
    return [{"event_id": e.event_id, "employee_id": e.employee_id, "type": e.type, "source": e.source,
             "received_at": e.received_at, "reason": e.status_reason}
            for e in health.hr_events_with_status(session, EventStatus.REJECTED)]


def _readback(check) -> dict[str, Any] | None:
    return {"at": check.checked_at, "verified": check.verified} if check is not None else None


def group_rows(held: dict[str, set[str]], granting: dict[str, dict[str, list[str]]] | None,
               requests: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Per target, each group the person holds with why (the policies granting it, who approved
    it) and each group awaiting approval; ``granting`` None: this process does not plan."""
    approved = {(r["target"], r["group"]): r["decided_by"] for r in reversed(requests) if r["status"] == "approved"}
    out: dict[str, list[dict[str, str]]] = {}
    for target, groups in held.items():
        for group in sorted(groups):
            policies = (granting or {}).get(target, {}).get(group)
            why = ("" if granting is None else f"granted by {', '.join(policies)}" if policies
                   else "granted by no policy now")
            if (target, group) in approved:
                why += f"{', ' if why else ''}approved by {approved[target, group]}"
            out.setdefault(target, []).append({"group": group, "why": why})
    for r in requests:
        if r["status"] == "pending" and r["group"] not in held.get(r["target"], set()):
            out.setdefault(r["target"], []).append({
                "group": r["group"], "why": "awaiting approval" + (f" (policies {', '.join(r['policies'])})"
                                                                   if r["policies"] else "")})
    return out


def person(session: Session, employee_id: str, now: datetime, policies=None) -> dict[str, Any] | None:
    """``policies`` (the running policy set) say which policy grants each group held."""
    found = identities.by_employee_id(session, employee_id)
    if found is None:
        return None
    timeline: list[dict[str, Any]] = []
    for e in intake.for_employee(session, employee_id):
        timeline.append({"at": e.received_at, "kind": "HR event",
                         "what": f"{e.type} {e.event_id} ({e.source}), effective {e.effective_at:%Y-%m-%d %H:%M}",
                         "outcome": e.status + (f": {e.status_reason}" if e.status_reason else "")})
    for t in identities.transitions(session, found.id):
        timeline.append({"at": t.at, "kind": "transition",
                         "what": f"{t.event_type}: {t.from_state or '–'} → {t.to_state or '–'}",
                         "outcome": ("accepted" if t.accepted else "refused") + (f": {t.reason}" if t.reason else "")})
    for op in queue.for_identity(session, found.id):
        timeline.append({"at": op.created_at, "kind": "operation",
                         "what": f"{op.kind} on {op.target}" + (f" ({op.group_key})" if op.group_key else ""),
                         "outcome": op.status + (f": {op.last_error.splitlines()[0][:200]}"
                                                 if op.last_error and op.status != "succeeded" else "")})
    requests = approvals_service.listing(session, now, status=None, identity_id=found.id, limit=200)
    for a in requests:
        timeline.append({"at": datetime.fromisoformat(a["created_at"]), "kind": "approval",
                         "what": f"{a['group']} on {a['target']} (policies {', '.join(a['policies'])})",
                         "outcome": a["status"] + (f" by {a['decided_by']}" if a["decided_by"] else "")
                         + (f": {a['comment']}" if a["comment"] else "")})
    timeline += reconcile_view.timeline(session, found.id)  # drift items and revocation incidents
    timeline.sort(key=lambda row: row["at"], reverse=True)
    accounts = identities.accounts(session, found.id)
    checks = evidence.latest_checks(session, found.id)
    held = identities.memberships(session, found.id)
    granting = desired_groups(policies, attributes_of(found), found.state) if policies is not None else None
    return {"employee_id": found.employee_id, "display_name": found.display_name, "state": found.state,
            "user_name": found.user_name, "attributes": attributes_of(found),
            "accounts": [{"target": t, "login": a.login, "remote_id": a.remote_id, "enabled": a.enabled,
                          "readback": _readback(checks.get(t))} for t, a in sorted(accounts.items())],
            "groups": {t: sorted(g) for t, g in sorted(held.items())},
            "group_rows": group_rows(held, granting, requests),
            "timeline": timeline}
