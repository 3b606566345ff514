"""Preview a person's plan without applying anything: IT reviews the access diff first.

Shows the plan for the person as they are now, then after each pending (future-dated) HR event,
applied in a transaction that is always rolled back. Each step names the person's login (the one
they have, or the one a hire or a rename will give them) and, per target, the login the account
holds or will be created with (a collision found in the target itself still adds a suffix).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from provisioner.change_control.holds.repository import held_for_identity
from provisioner.db import Database
from provisioner.identities import repository as identities
from provisioner.identities.lifecycle import EventType
from provisioner.identities.models import Identity
from provisioner.identities.naming import RENAME
from provisioner.identities.service import apply_hr_event
from provisioner.intake import repository as events
from provisioner.intake.contract_end import SOURCE as CONTRACT_END
from provisioner.planner.service import PlanningContext, compute


class UnknownEmployee(LookupError):
    pass


def preview(db: Database, ctx: PlanningContext, employee_id: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    with db.scratch() as session:
        identity = identities.by_employee_id(session, employee_id)
        pending = [e for e in events.pending_for(session, employee_id) if e.type != "cancel"]
        if identity is None and not pending:
            raise UnknownEmployee(f"no identity and no pending events for employee {employee_id!r}")
        if identity is not None:
            steps.append(_with_logins(session, ctx, identity, {"after": "now", "state": identity.state,
                                                          **compute(session, ctx, identity).diff,
                                                          "held": held_operations(session, identity.id)}))
        for event in pending:
            previous = identity.state if identity is not None else None
            ending = event.source == CONTRACT_END
            applied = apply_hr_event(session, employee_id=employee_id, event_type=EventType(event.type),
                                     event_id=event.event_id, effective_at=event.effective_at,
                                     attributes=event.payload.get("attributes", {}), naming=ctx.naming,
                                     ordered=not (event.immediate or ending))
            what = "contract end (end_date)" if ending else event.type
            step: dict[str, Any] = {"after": f"{what} {event.event_id} at {event.effective_at.isoformat()}"}
            if applied.superseded:
                step["superseded"] = applied.transition.reason
            elif not applied.transition.accepted or applied.identity is None:
                step["rejected"] = applied.transition.reason
            else:
                identity = applied.identity
                step = _with_logins(session, ctx, identity, {**step, **compute(session, ctx, identity, previous).diff})
            steps.append(step)
    return steps


def held_operations(session, identity_id: str) -> list[dict[str, Any]]:
    """The person's operations held by a mass-change hold (waiting for an approver)."""
    return [{"operation": op.id, "target": op.target, "kind": op.kind, "group": op.group_key, "cause": op.cause,
             "hold_id": hold.id, "held_since": hold.opened_at.isoformat()}
            for op, hold in held_for_identity(session, identity_id)]


def _with_logins(session: Session, ctx: PlanningContext, identity: Identity, step: dict[str, Any]) -> dict[str, Any]:
    """``login``: the person's; per target, what the account holds (``old -> new`` when a rename
    will change it), or the login a create uses."""
    session.flush()
    accounts = identities.accounts_by_identity(session, [identity.id])
    step["login"] = identity.user_name
    naming = ctx.naming
    for name, target in step.get("targets", {}).items():
        account = accounts.get((identity.id, name))
        if account is not None:
            renaming = (naming.on_name_change == RENAME and name in naming.login_targets and identity.user_name
                        and account.login and account.login != identity.user_name)
            target["login"] = f"{account.login} -> {identity.user_name}" if renaming else account.login
        elif target.get("desired_account") not in (None, "none"):
            target["login"] = identity.user_name
    return step
