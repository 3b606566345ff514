"""Rows that say again what the service heard before, after something else changed the person.

The CSV import derives each row's event id from its content, so a row imported once is "already
known" forever. For a snapshot, the full truth at each pull, that is wrong twice: a transfer
reverted (Sales, then Marketing, then Sales again) would leave the person in Marketing, and a
person terminated as missing who is in the next extract would stay terminated.

So, for a pulled file: a row whose event id is known, while the person's last event is not that
row (another row, a termination, an event over HTTP), is stored again under
``<row id>-<file sha256, 16 hex>``, effective at the pull (it asserts the row now); for a
terminated person an update becomes a ``rehire``. The same file pulled again gives the same ids
(nothing new); a row equal to the person's last event gives nothing either.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import ValidationError
from sqlalchemy.orm import Session

from provisioner.hr_sources.snapshots import repository
from provisioner.identities.lifecycle import EventType, State
from provisioner.intake import repository as intake
from provisioner.intake.csv_import import Parsed
from provisioner.intake.schemas import HREventIn


def reasserted(session: Session, parsed: Parsed, file_sha256: str) -> tuple[Parsed, int]:
    """``parsed`` with such rows re-identified, and how many."""
    known = intake.known_digests(session, [e.event_id for e in parsed.events if e.event_id.startswith("import-")])
    if not known:
        return parsed, 0
    people = [e.employee_id for e in parsed.events if e.event_id in known]
    last = repository.last_event_ids(session, people)
    states = repository.states(session, people)
    events, count = [], 0
    for event in parsed.events:
        if event.event_id in known and not last.get(event.employee_id, event.event_id).startswith(event.event_id):
            event = _again(event, file_sha256, parsed, states.get(event.employee_id))
            count += 1
        events.append(event)
    return replace(parsed, events=events), count


def _again(event: HREventIn, file_sha256: str, parsed: Parsed, state: str | None) -> HREventIn:
    body = {**event.model_dump(mode="json", exclude_unset=True), "event_id": f"{event.event_id}-{file_sha256[:16]}",
            "effective_at": parsed.now.isoformat()}
    if event.type == EventType.UPDATE and state == State.TERMINATED.value:
        try:
            return HREventIn.model_validate({**body, "type": EventType.REHIRE.value})
        except ValidationError:  # a rehire needs the names: the row stays an update
            pass
    return HREventIn.model_validate(body)
