"""Apply an HR change to a person's identity record through the lifecycle state machine.

HR owns the HR attributes (the columns listed in ``HR_ATTRIBUTES``); targets own the ids they
assign (``TargetAccount``). The service never commits: the job that calls it does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.identities import repository
from provisioner.identities.lifecycle import EventType, State, Transition, transition
from provisioner.identities.models import Identity, LifecycleTransition
from provisioner.identities.naming import login_local_part, with_suffix

HR_ATTRIBUTES = (
    "given_name", "family_name", "preferred_name", "department", "job_code", "title", "location",
    "cost_center", "manager_employee_id", "employment_type", "start_date", "end_date",
)


@dataclass(frozen=True, slots=True)
class Naming:
    """How the service names people's logins (from the primary Entra target's settings)."""

    template: str = "{given_name}.{family_name}"
    domain: str = "example.com"


@dataclass(slots=True)
class Applied:
    identity: Identity | None
    transition: Transition
    changed: dict[str, tuple[Any, Any]]


def attributes_of(identity: Identity) -> dict[str, Any]:
    """The attributes policies and account mappings read."""
    attrs = {name: getattr(identity, name) for name in HR_ATTRIBUTES}
    attrs.update(employee_id=identity.employee_id, source=identity.source,
                 extra=dict(identity.extra or {}), display_name=identity.display_name,
                 user_name=identity.user_name, email=identity.email)
    return attrs


def _coerce(name: str, value: Any) -> Any:
    if name in ("start_date", "end_date") and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _set_attributes(identity: Identity, attrs: dict[str, Any], *, replace: bool) -> dict[str, tuple[Any, Any]]:
    changed: dict[str, tuple[Any, Any]] = {}
    for name in HR_ATTRIBUTES:
        if name not in attrs and not replace:
            continue
        new = _coerce(name, attrs.get(name))
        old = getattr(identity, name)
        if new != old:
            changed[name] = (old, new)
            setattr(identity, name, new)
    if "extra" in attrs:
        merged = attrs["extra"] if replace else {**(identity.extra or {}), **attrs["extra"]}
        if merged != identity.extra:
            changed["extra"] = (identity.extra, merged)
            identity.extra = merged
    display = " ".join(p for p in (identity.preferred_name or identity.given_name, identity.family_name) if p)
    if display and display != identity.display_name:
        identity.display_name = display
    return changed


def assign_user_name(session: Session, identity: Identity, naming: Naming, suffix: int = 1) -> str:
    """The person's login: unique among identities; a later collision in a target bumps it."""
    local = login_local_part(naming.template, attributes_of(identity))
    while True:
        candidate = with_suffix(local, naming.domain, suffix)
        if not repository.user_name_taken(session, candidate, exclude_id=identity.id):
            identity.user_name = identity.email = candidate
            return candidate
        suffix += 1


def apply_hr_event(session: Session, *, employee_id: str, event_type: EventType, event_id: str,
                   effective_at: datetime, attributes: dict[str, Any], naming: Naming,
                   pre_hire: bool = False) -> Applied:
    """Move the person through the state machine and take HR's attributes.

    ``pre_hire`` creates the record of a future joiner ahead of their start (state pre_hire,
    no access) from a hire event that is not yet due.
    """
    now = utcnow()
    identity = repository.by_employee_id(session, employee_id, lock=True)
    current = State(identity.state) if identity is not None else None
    step = (Transition(None, State.PRE_HIRE, True) if pre_hire and identity is None
            else transition(current, event_type))
    if not step.accepted:
        if identity is not None:
            session.add(LifecycleTransition(identity_id=identity.id, event_id=event_id,
                                            event_type=event_type.value, from_state=current,
                                            to_state=None, accepted=False, reason=step.reason, at=now))
        append(session, "lifecycle.rejected", employee_id, event_id=event_id,
               event_type=event_type.value, from_state=current, reason=step.reason)
        return Applied(identity, step, {})
    created = identity is None
    if identity is None:
        identity = Identity(id=str(uuid.uuid4()), source="hr", employee_id=employee_id,
                            state=step.to_state, extra={}, active=True, version=0,
                            created_at=now, updated_at=now)
        session.add(identity)
    replace = event_type in (EventType.HIRE, EventType.REHIRE) and not pre_hire
    changed = _set_attributes(identity, attributes, replace=replace and not created)
    if identity.user_name is None:
        assign_user_name(session, identity, naming)
    identity.state = step.to_state.value
    identity.active = step.to_state == State.ACTIVE
    if not pre_hire:
        identity.hr_effective_at = effective_at
    identity.version += 1
    identity.updated_at = now
    session.flush()
    session.add(LifecycleTransition(identity_id=identity.id, event_id=event_id,
                                    event_type=event_type.value, from_state=current,
                                    to_state=step.to_state.value, accepted=True, at=now))
    append(session, "lifecycle.transition", employee_id, event_id=event_id,
           event_type=event_type.value, from_state=current, to_state=step.to_state.value,
           changed=sorted(changed))
    return Applied(identity, step, changed)
