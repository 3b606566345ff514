"""Rows that say again what the service heard before, after something else changed the person.

The CSV import derives each row's event id from its content, so a row imported once is "already
known" forever. For a snapshot, the full truth at each pull, that is wrong twice: a transfer
reverted (Sales, then Marketing, then Sales again) would leave the person in Marketing, and a
person terminated as missing who is in the next extract would stay terminated.

So, for a pulled file: a row whose event id is known, while the person's last event is not that
row (another row, a termination, an event over HTTP), is stored again under
``<row id>-<file sha256, 16 hex>`` (``…-<n>`` when that content is applied for the n-th time),
effective at the pull (it asserts the row now). For a terminated person it depends on who
terminated them:

- this source, as missing from an earlier extract (``terminate_missing``: event id
  ``snapshot-…``, source the source's name): an update becomes a ``rehire``;
- anyone else (``/hr/events``, another source, an import by hand): the extract lags behind that
  leaver, and nothing is stored for the row; it is reported (``Reasserted.held``) so HR sees it.

The same file pulled again gives the same ids (nothing new); a row equal to the person's last
event gives nothing either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import ValidationError
from sqlalchemy.orm import Session

from provisioner.hr_sources.snapshots import repository
from provisioner.identities.lifecycle import EventType, State
from provisioner.intake import repository as intake
from provisioner.intake.csv_import import MISSING_TERMINATION, Parsed
from provisioner.intake.schemas import HREventIn


@dataclass(frozen=True, slots=True)
class Reasserted:
    parsed: Parsed  # the file's rows, those said again re-identified, the held ones left out
    again: int  # rows said again (stored under a new id)
    held: tuple[str, ...] = ()  # employee ids: terminated by another channel, their row not stored


def reasserted(session: Session, parsed: Parsed, file_sha256: str, *, source: str, application: int = 1) -> Reasserted:
    """``parsed`` with such rows re-identified (``application``: how many times this content has
    been applied by ``source``, this time included), the rows of leavers of other channels left out."""
    known = intake.known_digests(session, [e.event_id for e in parsed.events if e.event_id.startswith("import-")])
    if not known:
        return Reasserted(parsed, 0)
    people = [e.employee_id for e in parsed.events if e.event_id in known]
    last = repository.last_event_ids(session, people)
    states = repository.states(session, people)
    terminated = [p for p in people if states.get(p) == State.TERMINATED.value]
    own = repository.terminated_by(session, terminated, source, MISSING_TERMINATION)
    suffix = file_sha256[:16] if application <= 1 else f"{file_sha256[:16]}-{application}"
    events, count, held = [], 0, []
    for event in parsed.events:
        if event.event_id in known and not last.get(event.employee_id, event.event_id).startswith(event.event_id):
            state = states.get(event.employee_id)
            if state == State.TERMINATED.value and event.employee_id not in own:
                held.append(event.employee_id)
                continue
            event = _again(event, suffix, parsed, state)
            count += 1
        events.append(event)
    return Reasserted(replace(parsed, events=events), count, tuple(held))


def _again(event: HREventIn, suffix: str, parsed: Parsed, state: str | None) -> HREventIn:
    body = {**event.model_dump(mode="json", exclude_unset=True), "event_id": f"{event.event_id}-{suffix}",
            "effective_at": parsed.now.isoformat()}
    if event.type == EventType.UPDATE and state == State.TERMINATED.value:
        try:
            return HREventIn.model_validate({**body, "type": EventType.REHIRE.value})
        except ValidationError:  # a rehire needs the names: the row stays an update
            pass
    return HREventIn.model_validate(body)
