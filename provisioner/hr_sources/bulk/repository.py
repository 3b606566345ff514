"""What the bulk upload reads about the people a request names: their state as it will be once
the pending events are applied, and the source's latest event for each (repeats)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from provisioner.identities.lifecycle import TRANSITIONS, EventType, State
from provisioner.identities.models import Identity
from provisioner.intake.models import EventStatus, HREvent

_CHUNK = 500
_LIFECYCLE = tuple(t.value for t in (EventType.HIRE, EventType.REHIRE, EventType.TERMINATE,
                                     EventType.LEAVE, EventType.RETURN))


@dataclass
class Person:
    """One employee id as the bulk upload sees it."""

    state: State | None = None  # after the pending lifecycle events (None: unknown)
    events_from_source: int = 0
    latest_event_id: str | None = None  # the source's newest event for them
    latest_payload: dict[str, Any] | None = None


# Built once (the intake's hot path): the same statements for every request.
_IDS = bindparam("ids", expanding=True)
_STATES = select(Identity.employee_id, Identity.state).where(Identity.employee_id.in_(_IDS))
_PENDING = (select(HREvent.employee_id, HREvent.type)
            .where(HREvent.employee_id.in_(_IDS), HREvent.status == EventStatus.PENDING,
                   HREvent.type.in_(_LIFECYCLE))
            .order_by(HREvent.effective_at, HREvent.id))
_FROM_SOURCE = (select(HREvent.employee_id, func.count(), func.max(HREvent.id))
                .where(HREvent.employee_id.in_(_IDS), HREvent.source == bindparam("source"))
                .group_by(HREvent.employee_id))
_LATEST = select(HREvent.event_id, HREvent.payload, HREvent.id).where(HREvent.id.in_(bindparam("pks", expanding=True)))


def people(session: Session, source: str, employee_ids: Iterable[str]) -> dict[str, Person]:
    ids = sorted(set(employee_ids))
    found = {emp: Person() for emp in ids}
    conn = session.connection()  # Core statements: the intake's hot path (as intake.repository.known_digests)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for emp, state in conn.execute(_STATES, {"ids": chunk}):
            found[emp].state = State(state)
        for emp, etype in conn.execute(_PENDING, {"ids": chunk}):  # as the processor will apply them
            person = found[emp]
            person.state = TRANSITIONS.get((person.state, EventType(etype)), person.state)
        latest: dict[int, str] = {}
        for emp, count, newest in conn.execute(_FROM_SOURCE, {"ids": chunk, "source": source}):
            found[emp].events_from_source = count
            latest[newest] = emp
        if latest:
            for event_id, payload, pk in conn.execute(_LATEST, {"pks": list(latest)}):
                person = found[latest[pk]]
                person.latest_event_id, person.latest_payload = event_id, payload
    return found
