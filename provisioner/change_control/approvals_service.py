"""Decisions on access that waits: approve or reject (single or bulk), end time-bound access when
it expires, and re-plan the people concerned so that the planner applies (or removes) it.

Every decision is recorded on the request (who, when, why, until when) and in the audit trail.
An approver never decides a request they asked for themselves (``requested_by``), through
whichever channel (``actors.same_person``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import Entry, append_many
from provisioner.change_control import approvals_repository as repository
from provisioner.change_control.actors import same_person
from provisioner.change_control.approvals_planning import API_TRIGGER
from provisioner.change_control.models import AccessRequest, RequestKind, RequestStatus
from provisioner.identities import repository as identities
from provisioner.identities.models import Identity
from provisioner.planner.service import PlanningContext, PlanRequest, PlanResult, plan_many

COMMENT_MAX = 2000


class DecisionError(ValueError):
    """Bad input to a decision (no comment, an expiry in the past or too far): nothing is stored."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class Refusal:
    id: int
    reason: str
    status: int  # the HTTP status a single decision answers with: 403 own request, 404, 409


@dataclass
class Outcome:
    decided: list[dict[str, Any]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"decided": self.decided,
                "refused": [{"id": r.id, "reason": r.reason} for r in self.refused]}


def view(row: AccessRequest, person: Identity, now: datetime) -> dict[str, Any]:
    """A request as IT reviews it: who, what, which policy grants it, and its decision."""
    out: dict[str, Any] = {
        "id": row.id, "kind": row.kind, "status": row.status,
        "employee_id": person.employee_id, "display_name": person.display_name,
        "target": row.target, "group": row.group_key, "change": "add",
        "policies": list((row.detail or {}).get("policies", [])),
        "requested_by": row.requested_by, "trigger": row.trigger,
        "created_at": row.created_at.isoformat(), "age_seconds": round((now - row.created_at).total_seconds()),
        "decided_by": row.decided_by, "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "comment": row.comment, "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }
    if row.kind == RequestKind.SOD:
        out["rule"] = row.rule
        out["conflicts_with"] = [{"target": t, "group": g} for t, g in (row.detail or {}).get("conflicts_with", [])]
    return out


def listing(session: Session, now: datetime, **filters: Any) -> list[dict[str, Any]]:
    return [view(row, person, now) for row, person in repository.listing(session, **filters)]


def show(session: Session, request_id: int, now: datetime) -> dict[str, Any] | None:
    found = repository.listing(session, status=None, ids=[request_id], limit=1)
    return view(*found[0], now) if found else None


def check_comment(comment: str | None) -> str:
    text = (comment or "").strip()
    if not text:
        raise DecisionError("comment", "say why (every decision records who, when and why)")
    if len(text) > COMMENT_MAX:
        raise DecisionError("comment", f"at most {COMMENT_MAX} characters")
    return text


def check_expiry(expires_at: datetime | None, now: datetime, max_days: int | None, *,
                 required: bool = False) -> datetime | None:
    if expires_at is None:
        if required:
            raise DecisionError("expires_at", f"an exception must expire: give a time within {max_days} days")
        return now + timedelta(days=max_days) if max_days else None
    if expires_at.tzinfo is None:
        raise DecisionError("expires_at", "give a time zone offset (e.g. 2026-01-31T17:00:00Z)")
    if expires_at <= now:
        raise DecisionError("expires_at", "must lie in the future")
    if max_days and expires_at > now + timedelta(days=max_days):
        raise DecisionError("expires_at", f"at most {max_days} days ahead (setting "
                                          f"{'sod_exception_max_days' if required else 'approval_max_days'})")
    return expires_at


def decide(session: Session, ctx: PlanningContext, *, ids: Sequence[int] | None, approve: bool, actor: str,
           comment: str | None, expires_at: datetime | None, now: datetime,
           max_days: int | None = None) -> Outcome:
    """Approve or reject pending approval requests: ``ids``, or every pending one (None). One
    request that cannot be decided (the actor's own, already decided, unknown) never blocks
    the others; it is refused with its reason."""
    why = check_comment(comment)
    until = check_expiry(expires_at, now, max_days) if approve else None
    outcome = Outcome()
    if ids is None:
        found = repository.listing(session, kind=RequestKind.APPROVAL, lock=True, limit=10_000)
    else:
        found = repository.listing(session, status=None, ids=ids, lock=True, limit=len(ids) or 1)
        known = {row.id for row, _ in found}
        outcome.refused += [Refusal(i, f"no approval request {i}", 404) for i in dict.fromkeys(ids) if i not in known]
    entries: list[Entry] = []
    approved: dict[str, Identity] = {}
    for row, person in found:
        refusal = _refusal(row, actor)
        if refusal:
            outcome.refused.append(Refusal(row.id, *refusal))
            continue
        row.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
        row.decided_by, row.decided_at, row.comment, row.expires_at = actor, now, why, until
        entries.append(Entry(f"approval.{row.status}", person.employee_id or person.id, {
            "request_id": row.id, "target": row.target, "group": row.group_key,
            "policies": (row.detail or {}).get("policies", []), "by": actor, "comment": why,
            "expires_at": until.isoformat() if until else None, "requested_by": row.requested_by}))
        if approve:
            approved[person.id] = person
        outcome.decided.append(view(row, person, now))
    session.flush()
    append_many(session, entries)
    replan(session, ctx, approved.values(), f"approval:{actor}"[:200])
    return outcome


def _refusal(row: AccessRequest, actor: str) -> tuple[str, int] | None:
    if row.kind != RequestKind.APPROVAL:
        return (f"request {row.id} is a separation-of-duties flag: grant an exception "
                "('provisioner sod exception grant') or fix the policy", 409)
    if row.status != RequestStatus.PENDING:
        return f"request {row.id} is {row.status}, not pending", 409
    if same_person(row.requested_by, actor):
        return f"request {row.id} was requested by {row.requested_by}: another approver must decide it", 403
    return None


def replan(session: Session, ctx: PlanningContext, people: Iterable[Identity], trigger: str) -> list[PlanResult]:
    """Plan these people again (their grants now decided), in this transaction."""
    requests = [PlanRequest(p, trigger=trigger, previous_state=p.state) for p in people]
    return plan_many(session, ctx, requests) if requests else []


def request_plan(session: Session, ctx: PlanningContext, employee_id: str, actor: str) -> PlanResult | None:
    """Re-plan one person at an API token's request: what this plan asks for records the token
    as its requester (who then cannot approve it)."""
    person = identities.by_employee_id(session, employee_id, lock=True)
    if person is None:
        return None
    return replan(session, ctx, [person], f"{API_TRIGGER}{actor}"[:200])[0]


def expire_due(session: Session, ctx: PlanningContext, now: datetime) -> int:
    """End approvals and exceptions whose time is up: recorded, audited, and the people re-planned
    so that the planner removes the access (read back from the target like every removal)."""
    rows = repository.due_to_expire(session, now)
    if not rows:
        return 0
    people = repository.identities_by_id(session, [r.identity_id for r in rows])
    entries = []
    for row in rows:
        row.status = RequestStatus.EXPIRED
        person = people[row.identity_id]
        entries.append(Entry(f"{'approval' if row.kind == RequestKind.APPROVAL else 'sod'}.expired",
                             person.employee_id or person.id,
                             {"request_id": row.id, "target": row.target, "group": row.group_key,
                              "rule": row.rule, "expires_at": row.expires_at.isoformat()}))
    session.flush()
    append_many(session, entries)
    replan(session, ctx, people.values(), "expiry")
    return len(rows)
