"""Separation of duties: grants blocked by a conflict rule (flags), the exceptions approvers grant
for them (always with an expiry), and the people who hold a conflict now.

A blocked grant is an ``AccessRequest`` of kind ``sod``; granting an exception approves the
person's flags of that rule until the expiry, then the person is re-planned and the grant
applied. Revoking it (or its expiry) removes the excepted groups through the planner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import Entry, append_many
from provisioner.change_control import approvals_repository as repository
from provisioner.change_control.actors import same_person
from provisioner.change_control.approvals_gate import rules_for
from provisioner.change_control.approvals_service import (
    DecisionError,
    check_comment,
    check_expiry,
    replan,
    view,
)
from provisioner.change_control.models import RequestKind, RequestStatus
from provisioner.identities import repository as identities
from provisioner.planner.service import PlanningContext


class SodError(LookupError):
    """Nothing to act on (no such person, rule or blocked grant); ``status`` for HTTP."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


def _person_rule(session: Session, ctx: PlanningContext, employee_id: str, rule: str):
    if rule not in {r.name for r in rules_for(ctx).conflicts}:
        known = ", ".join(sorted(r.name for r in rules_for(ctx).conflicts)) or "none declared"
        raise DecisionError("rule", f"no separation-of-duties rule {rule!r} (rules: {known})")
    person = identities.by_employee_id(session, employee_id, lock=True)
    if person is None:
        raise SodError(f"no identity for employee {employee_id!r}")
    return person


def grant_exception(session: Session, ctx: PlanningContext, *, employee_id: str, rule: str, actor: str,
                    comment: str | None, expires_at: datetime | None, now: datetime,
                    max_days: int) -> list[dict[str, Any]]:
    """Let the person hold the groups ``rule`` blocked for them, until ``expires_at``."""
    why = check_comment(comment)
    until = check_expiry(expires_at, now, max_days, required=True)
    person = _person_rule(session, ctx, employee_id, rule)
    flags = repository.listing(session, kind=RequestKind.SOD, identity_id=person.id, rule=rule, lock=True)
    if not flags:
        raise SodError(f"no grant of {employee_id} is blocked by rule {rule!r} (see 'provisioner sod list')")
    own = [row.id for row, _ in flags if same_person(row.requested_by, actor)]
    if own:
        raise SodError(f"request(s) {own} were requested by {actor}: another approver must grant the exception", 403)
    entries, out = [], []
    for row, _ in flags:
        row.status, row.decided_by, row.decided_at = RequestStatus.APPROVED, actor, now
        row.comment, row.expires_at = why, until
        out.append(view(row, person, now))
        entries.append(Entry("sod.exception_granted", employee_id, {
            "request_id": row.id, "rule": rule, "target": row.target, "group": row.group_key, "by": actor,
            "comment": why, "expires_at": until.isoformat() if until else None}))
    session.flush()
    append_many(session, entries)
    replan(session, ctx, [person], f"sod-exception:{actor}"[:200])
    return out


def revoke_exception(session: Session, ctx: PlanningContext, *, employee_id: str, rule: str, actor: str,
                     comment: str | None, now: datetime) -> list[dict[str, Any]]:
    """End the person's exception to ``rule`` now: the excepted groups are removed."""
    why = check_comment(comment)
    person = _person_rule(session, ctx, employee_id, rule)
    rows = repository.listing(session, status=RequestStatus.APPROVED, kind=RequestKind.SOD,
                              identity_id=person.id, rule=rule, lock=True)
    if not rows:
        raise SodError(f"{employee_id} has no exception to rule {rule!r}")
    entries, out = [], []
    for row, _ in rows:
        row.status, row.decided_by, row.decided_at, row.comment = RequestStatus.REVOKED, actor, now, why
        out.append(view(row, person, now))
        entries.append(Entry("sod.exception_revoked", employee_id, {
            "request_id": row.id, "rule": rule, "target": row.target, "group": row.group_key, "by": actor,
            "comment": why}))
    session.flush()
    append_many(session, entries)
    replan(session, ctx, [person], f"sod-revoke:{actor}"[:200])
    return out


def held_conflicts(session: Session, ctx: PlanningContext) -> list[dict[str, Any]]:
    """People who hold two or more groups of a rule now (known memberships), with the exception
    that allows it, if any."""
    rules = rules_for(ctx).conflicts
    keys = sorted({k for r in rules for k in r.groups})
    held: dict[str, set[tuple[str, str]]] = {}
    for identity_id, target, group in repository.holders(session, keys):
        held.setdefault(identity_id, set()).add((target, group))
    found = [(identity_id, rule, sorted(rule.groups & groups)) for identity_id, groups in held.items()
             for rule in rules if len(rule.groups & groups) >= 2]
    if not found:
        return []
    people = repository.identities_by_id(session, [f[0] for f in found])
    excepted: dict[tuple[str, str], str | None] = {}
    for row, _ in repository.listing(session, status=RequestStatus.APPROVED, kind=RequestKind.SOD, limit=100_000):
        excepted[(row.identity_id, row.rule or "")] = row.expires_at.isoformat() if row.expires_at else None
    out = []
    for identity_id, rule, groups in sorted(found, key=lambda f: (people[f[0]].employee_id or "", f[1].name)):
        key = (identity_id, rule.name)
        out.append({"employee_id": people[identity_id].employee_id, "display_name": people[identity_id].display_name,
                    "rule": rule.name, "policy": rule.policy,
                    "groups": [{"target": t, "group": g} for t, g in groups],
                    "exception": key in excepted, "exception_expires_at": excepted.get(key)})
    return out
