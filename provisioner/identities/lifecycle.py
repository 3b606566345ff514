"""The lifecycle state machine: which HR event may move a person from which state to which.

A transition that is not in the table is rejected, and the rejection is recorded (a
``LifecycleTransition`` row with ``accepted=False`` and an audit record): never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    PRE_HIRE = "pre_hire"
    ACTIVE = "active"
    ON_LEAVE = "on_leave"
    TERMINATED = "terminated"


class EventType(StrEnum):
    HIRE = "hire"
    UPDATE = "update"
    TRANSFER = "transfer"
    LEAVE = "leave"
    RETURN = "return"
    TERMINATE = "terminate"
    REHIRE = "rehire"
    CANCEL = "cancel"


_S = State
_E = EventType

# (current state or None for an unknown person, event) -> next state
TRANSITIONS: dict[tuple[State | None, EventType], State] = {
    (None, _E.HIRE): _S.ACTIVE,
    (None, _E.REHIRE): _S.ACTIVE,
    (_S.PRE_HIRE, _E.HIRE): _S.ACTIVE,
    (_S.PRE_HIRE, _E.UPDATE): _S.PRE_HIRE,
    (_S.PRE_HIRE, _E.TRANSFER): _S.PRE_HIRE,
    (_S.PRE_HIRE, _E.TERMINATE): _S.TERMINATED,
    (_S.ACTIVE, _E.UPDATE): _S.ACTIVE,
    (_S.ACTIVE, _E.TRANSFER): _S.ACTIVE,
    (_S.ACTIVE, _E.LEAVE): _S.ON_LEAVE,
    (_S.ACTIVE, _E.TERMINATE): _S.TERMINATED,
    (_S.ON_LEAVE, _E.UPDATE): _S.ON_LEAVE,
    (_S.ON_LEAVE, _E.TRANSFER): _S.ON_LEAVE,
    (_S.ON_LEAVE, _E.RETURN): _S.ACTIVE,
    (_S.ON_LEAVE, _E.TERMINATE): _S.TERMINATED,
    (_S.TERMINATED, _E.UPDATE): _S.TERMINATED,  # corrections to a leaver's record
    (_S.TERMINATED, _E.REHIRE): _S.ACTIVE,
}

_HINTS: dict[EventType, str] = {
    _E.HIRE: "already known: send 'update', or 'rehire' for a returning leaver",
    _E.RETURN: "only a person on leave can return",
    _E.LEAVE: "only an active person can go on leave",
    _E.TERMINATE: "already terminated",
    _E.REHIRE: "only a terminated person can be rehired",
}


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: State | None
    to_state: State | None
    accepted: bool
    reason: str | None = None


def transition(current: State | None, event: EventType) -> Transition:
    nxt = TRANSITIONS.get((current, event))
    if nxt is not None:
        return Transition(current, nxt, True)
    if current is None:
        reason = f"unknown employee: a '{event}' needs a prior 'hire'"
    else:
        reason = f"'{event}' is not allowed from state {current}: {_HINTS.get(event, 'no such transition')}"
    return Transition(current, None, False, reason)
