"""Apply an HR change to a person's identity record through the lifecycle state machine.

HR owns the HR attributes (the columns listed in ``HR_ATTRIBUTES``); targets own the ids they
assign (``TargetAccount``). The service never commits: the job that calls it does. A batch of
events reads its people and the logins they may take once (``Preloaded``) instead of per event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from provisioner import limits
from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.identities import repository
from provisioner.identities.lifecycle import EventType, State, Transition, transition
from provisioner.identities.models import Identity, LifecycleTransition
from provisioner.identities.naming import RENAME, Naming, candidate, login_local_part, name_changed

LIFECYCLE_EVENTS = frozenset({EventType.HIRE, EventType.TERMINATE, EventType.LEAVE, EventType.RETURN,
                              EventType.REHIRE})
HR_ATTRIBUTES = (
    "given_name", "family_name", "preferred_name", "department", "job_code", "title", "location",
    "cost_center", "manager_employee_id", "employment_type", "start_date", "end_date", "preferred_login",
)


@dataclass(slots=True)
class Applied:
    identity: Identity | None
    transition: Transition
    changed: dict[str, tuple[Any, Any]]
    superseded: bool = False  # older than what the record holds: nothing applied
    kept_newer: list[str] = field(default_factory=list)  # attributes a newer event had set


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


class _Clock:
    """Per attribute, the effective time of the event that set its current value: an event
    sets an attribute only if it is not older than that (a late, older update never
    overwrites a newer value, but does set what nothing newer set)."""

    def __init__(self, identity: Identity, effective_at: datetime | None) -> None:
        self.times = dict(identity.attr_effective or {})
        # Records from before per-attribute times: every attribute dates from the newest event.
        self.default = identity.hr_effective_at if identity.attr_effective is None else None
        self.at = effective_at
        self.skipped: list[str] = []
        self.taken: list[str] = []

    def takes(self, name: str) -> bool:
        if self.at is None:  # a pre-hire record: stamped when the hire itself applies
            return True
        stamp = self.times.get(name)
        newest = datetime.fromisoformat(stamp) if stamp else self.default
        if newest is not None and self.at < newest:
            self.skipped.append(name)
            return False
        self.times[name] = self.at.isoformat()
        self.taken.append(name)
        return True


def _set_attributes(identity: Identity, attrs: dict[str, Any], *, replace: bool,
                    clock: _Clock) -> dict[str, tuple[Any, Any]]:
    changed: dict[str, tuple[Any, Any]] = {}
    for name in HR_ATTRIBUTES:
        if name not in attrs and not replace:
            continue
        if not clock.takes(name):
            continue
        new = _coerce(name, attrs.get(name))
        old = getattr(identity, name)
        if new != old:
            changed[name] = (old, new)
            setattr(identity, name, new)
    if "extra" in attrs or replace:
        given = attrs.get("extra") or {}
        merged = dict(identity.extra or {})
        for key in sorted(set(given) | (set(merged) if replace else set())):
            if clock.takes(f"extra.{key}"):
                if key in given:
                    merged[key] = given[key]
                else:
                    merged.pop(key, None)
        if merged != (identity.extra or {}):
            changed["extra"] = (identity.extra, merged)
            identity.extra = merged
    identity.attr_effective = clock.times
    display = " ".join(p for p in (identity.preferred_name or identity.given_name, identity.family_name) if p)
    display = display[:limits.DISPLAY_NAME]  # two names at their limits are one character longer
    if display and display != identity.display_name:
        identity.display_name = display
    return changed


class UserNames:
    """Logins known to be taken or free, read once for a batch of people (``preload``) and kept
    up to date as the batch assigns them; anything not read is asked of the database."""

    def __init__(self) -> None:
        self.taken: dict[str, bool] = {}

    def preload(self, session: Session, candidates: Iterable[str]) -> None:
        wanted = [c for c in set(candidates) if c not in self.taken]
        found = repository.user_names_taken(session, wanted) if wanted else set()
        self.taken.update({c: c in found for c in wanted})

    def is_taken(self, session: Session, candidate: str, identity: Identity) -> bool:
        known = self.taken.get(candidate)
        if known is None:
            return repository.user_name_taken(session, candidate, exclude_id=identity.id)
        return known

    def take(self, candidate: str) -> None:
        self.taken[candidate] = True


def login_candidate(naming: Naming, employee_id: str, attributes: dict[str, Any]) -> str | None:
    """The first login a new person with these HR attributes would be offered (to preload)."""
    attrs = {name: _coerce(name, attributes.get(name)) for name in HR_ATTRIBUTES}
    attrs.update(employee_id=employee_id, source="hr", user_name=None, email=None)
    try:
        return candidate(naming, login_local_part(naming.template, attrs), 1)[0]
    except ValueError:
        return None


@dataclass(slots=True)
class Preloaded:
    """What a batch of HR events read up front: its people by employee id (locked; None: no
    record yet) and the logins they may take."""

    people: dict[str, Identity | None]
    names: UserNames = field(default_factory=UserNames)
    transitions: list[dict[str, Any]] = field(default_factory=list)  # stored by ``store``

    def store(self, session: Session) -> None:
        """Write the people and the transitions kept for one bulk insert."""
        session.flush()
        repository.insert_transitions(session, self.transitions)
        self.transitions = []

    def person(self, session: Session, employee_id: str) -> Identity | None:
        if employee_id not in self.people:
            self.people[employee_id] = repository.by_employee_id(session, employee_id, lock=True)
        return self.people[employee_id]


def assign_user_name(session: Session, identity: Identity, naming: Naming, suffix: int = 1,
                     names: UserNames | None = None) -> str:
    """The person's login: unique among identities, not reserved; a later collision in a target
    bumps it. A person who already holds one of the candidates (a rename to the same name) keeps it."""
    local = login_local_part(naming.template, attributes_of(identity))
    current = (identity.user_name or "").casefold()
    while True:
        login, suffix = candidate(naming, local, suffix)
        if login.casefold() == current:
            return identity.user_name or login
        taken = (names.is_taken(session, login, identity) if names is not None
                 else repository.user_name_taken(session, login, exclude_id=identity.id))
        if not taken:
            identity.user_name = identity.email = login
            if names is not None:
                names.take(login)
            return login
        suffix += 1


def _record(session: Session, preloaded: Preloaded | None, **transition: Any) -> None:
    """A transition asked of the state machine; in a batch, kept for one insert (``store``)."""
    if preloaded is not None:
        preloaded.transitions.append(transition)
    else:
        session.add(LifecycleTransition(**transition))


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def apply_hr_event(session: Session, *, employee_id: str, event_type: EventType, event_id: str,
                   effective_at: datetime, attributes: dict[str, Any], naming: Naming,
                   pre_hire: bool = False, ordered: bool = True,
                   preloaded: Preloaded | None = None) -> Applied:
    """Move the person through the state machine and take HR's attributes (README, "Event
    semantics"):

    - lifecycle events (hire, terminate, leave, return, rehire) are ordered among themselves
      only: one older than the newest lifecycle event applied is superseded, however many
      attribute updates came in between; otherwise a back-dated one applies now;
    - attributes resolve one by one by effective time (``_Clock``); an update none of whose
      attributes is newer than what the record holds is superseded.

    ``ordered=False`` skips the lifecycle ordering (an immediate termination, a contract end).
    ``pre_hire`` creates the record of a future joiner ahead of their start (state pre_hire,
    no access) from a hire event that is not yet due. ``preloaded``: the batch's people and
    logins, read once (nothing is flushed here then: the batch flushes once).
    """
    now = utcnow()
    identity = (preloaded.person(session, employee_id) if preloaded is not None
                else repository.by_employee_id(session, employee_id, lock=True))
    current = State(identity.state) if identity is not None else None
    lifecycle = event_type in LIFECYCLE_EVENTS
    if (identity is not None and lifecycle and ordered and not pre_hire
            and identity.lifecycle_effective_at is not None and effective_at < identity.lifecycle_effective_at):
        reason = (f"older than the newest lifecycle event applied ({identity.lifecycle_effective_at.isoformat()}): "
                  "an older lifecycle event never overrides a newer one")
        return Applied(identity, Transition(current, None, False, reason), {}, superseded=True)
    step = (Transition(None, State.PRE_HIRE, True) if pre_hire and identity is None
            else transition(current, event_type))
    if not step.accepted:
        if identity is not None:
            _record(session, preloaded, identity_id=identity.id, event_id=event_id, event_type=event_type.value,
                    from_state=current, to_state=None, accepted=False, reason=step.reason, at=now)
        append(session, "lifecycle.rejected", employee_id, event_id=event_id,
               event_type=event_type.value, from_state=current, reason=step.reason)
        return Applied(identity, step, {})
    created = identity is None
    if identity is None:
        identity = Identity(id=str(uuid.uuid4()), source="hr", employee_id=employee_id,
                            state=step.to_state, extra={}, active=True, version=0,
                            created_at=now, updated_at=now)
        session.add(identity)
        if preloaded is not None:
            preloaded.people[employee_id] = identity
    replace = event_type in (EventType.HIRE, EventType.REHIRE) and not pre_hire
    clock = _Clock(identity, None if pre_hire else effective_at)
    changed = _set_attributes(identity, attributes, replace=replace and not created, clock=clock)
    if not lifecycle and clock.skipped and not clock.taken:
        reason = ("every attribute it carries has a newer value already "
                  f"({', '.join(clock.skipped)}): an older update never overwrites a newer one")
        return Applied(identity, Transition(current, None, False, reason), {}, superseded=True)
    if identity.user_name is None or (naming.on_name_change == RENAME and not created and name_changed(changed)):
        assign_user_name(session, identity, naming, names=preloaded.names if preloaded is not None else None)
    identity.state = step.to_state.value
    identity.active = step.to_state == State.ACTIVE
    if not pre_hire:
        identity.hr_effective_at = _later(identity.hr_effective_at, effective_at)
        if lifecycle:
            identity.lifecycle_effective_at = _later(identity.lifecycle_effective_at, effective_at)
    identity.version += 1
    identity.updated_at = now
    if preloaded is None:
        session.flush()
    _record(session, preloaded, identity_id=identity.id, event_id=event_id, event_type=event_type.value,
            from_state=current, to_state=step.to_state.value, accepted=True, reason=None, at=now)
    append(session, "lifecycle.transition", employee_id, event_id=event_id,
           event_type=event_type.value, from_state=current, to_state=step.to_state.value,
           changed=sorted(changed), kept_newer=sorted(clock.skipped))
    return Applied(identity, step, changed, kept_newer=clock.skipped)
