"""What the bulk upload reads about the people a request names: their state and the HR lifecycle
events still pending for them (so their state at a given time is known), and the source's latest
event for each (repeats). The service's own contract ends (source ``contract_end``) are not HR's
word on the person: a worker with an end date ahead is still active until then, so they are left
out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from provisioner.identities.lifecycle import TRANSITIONS, EventType, State
from provisioner.identities.models import Identity
from provisioner.intake import contract_end
from provisioner.intake.models import EventStatus, HREvent

_CHUNK = 500
_LIFECYCLE = tuple(t.value for t in (EventType.HIRE, EventType.REHIRE, EventType.TERMINATE,
                                     EventType.LEAVE, EventType.RETURN))


@dataclass
class Person:
    """One employee id as the bulk upload sees it."""

    state: State | None = None  # as stored now (None: unknown)
    pending: list[tuple[datetime, EventType]] = field(default_factory=list)  # HR's, in processing order
    events_from_source: int = 0
    latest_event_id: str | None = None  # the source's newest event for them
    latest_payload: dict[str, Any] | None = None

    def state_at(self, when: datetime) -> State | None:
        """The state once the pending events due at or before ``when`` are applied, as the processor will."""
        state = self.state
        for effective_at, etype in self.pending:
            if effective_at > when:
                break
            state = TRANSITIONS.get((state, etype), state)
        return state


# Built once (the intake's hot path): the same statements for every request.
_IDS = bindparam("ids", expanding=True)
_STATES = select(Identity.employee_id, Identity.state).where(Identity.employee_id.in_(_IDS))
_PENDING = (select(HREvent.employee_id, HREvent.effective_at, HREvent.type)
            .where(HREvent.employee_id.in_(_IDS), HREvent.status == EventStatus.PENDING,
                   HREvent.type.in_(_LIFECYCLE), HREvent.source != contract_end.SOURCE)
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
        for emp, effective_at, etype in conn.execute(_PENDING, {"ids": chunk}):
            found[emp].pending.append((effective_at, EventType(etype)))
        latest: dict[int, str] = {}
        for emp, count, newest in conn.execute(_FROM_SOURCE, {"ids": chunk, "source": source}):
            found[emp].events_from_source = count
            latest[newest] = emp
        if latest:
            for event_id, payload, pk in conn.execute(_LATEST, {"pks": list(latest)}):
                person = found[latest[pk]]
                person.latest_event_id, person.latest_payload = event_id, payload
    return found
