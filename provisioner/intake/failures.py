"""Failed HR events: a person fixes the cause and replays them, or discards one.

An event is ``failed`` when processing it raised (see ``processor``); nothing of it was stored.
The person's later events (other than a cancel, and a terminate or leave of someone with a
record) wait behind it, so :func:`replay` (back to ``pending``: the processor applies it at its
next round, then what waited) or :func:`discard` (``rejected``, the reason saying who decided;
what waited then goes on) is what releases them. Both are in the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from provisioner.audit.service import append
from provisioner.clock import utcnow
from provisioner.intake import fate, repository
from provisioner.intake.models import EventStatus, HREvent


class NotFailed(ValueError):
    """An event named that does not exist or did not fail."""


@dataclass(frozen=True)
class Released:
    event_id: str
    employee_id: str
    failed_with: str | None
    waiting: int  # the person's later events that waited behind it


def _failed(session: Session, event_ids: Sequence[str] | None) -> list[HREvent]:
    events = list(repository.failed_events(session, event_ids))
    if event_ids is not None:
        found = {e.event_id for e in events}
        for event_id in event_ids:
            if event_id not in found:
                other = repository.get(session, event_id)
                raise NotFailed(f"no HR event {event_id!r}" if other is None else
                                f"HR event {event_id!r} is {other.status}, not failed: only failed events "
                                "can be replayed or discarded")
    return events


def replay(session: Session, event_ids: Sequence[str] | None, *, by: str) -> list[Released]:
    """Set failed events (these, or all with ``event_ids=None``) back to pending."""
    out = []
    for event in _failed(session, event_ids):
        out.append(Released(event.event_id, event.employee_id, event.status_reason,
                            len(repository.held_behind(session, event))))
        append(session, "hr_event.replay", event.employee_id, event_id=event.event_id,
               failed_with=event.status_reason, by=by)
        event.status, event.status_reason, event.processed_at = EventStatus.PENDING, None, None
    return out


def discard(session: Session, event_ids: Sequence[str], *, reason: str, by: str) -> list[Released]:
    """Give up on failed events: ``rejected``, with who decided and why; nothing of them applies."""
    out = []
    for event in _failed(session, event_ids):
        out.append(Released(event.event_id, event.employee_id, event.status_reason,
                            len(repository.held_behind(session, event))))
        text = f"discarded by {by}: {reason} (it had failed with {event.status_reason})"
        event.status, event.status_reason, event.processed_at = EventStatus.REJECTED, text, utcnow()
        fate.settled(event)
        append(session, "hr_event.discard", event.employee_id, event_id=event.event_id, reason=text, by=by)
    return out
