"""Intake validation a person can act on: every error names its field, duplicates name both places.

Used by ``POST /hr/events`` (fields such as ``events.3.attributes.family_name``) and by the CSV
import (``file.csv:7: attributes.family_name``). The shape of one event is the schema's
(``schemas.py``, limits from ``provisioner/limits.py``); what only a whole batch shows (the same
``event_id`` twice, the same person hired twice) is checked here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from provisioner.identities.lifecycle import EventType
from provisioner.intake.schemas import EffectiveWindow, HREventIn

MAX_REPORTED = 100
"""At most this many errors are listed (with the total count)."""

_event = TypeAdapter(HREventIn)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


@dataclass
class Invalid(Exception):
    """The request or file is refused; ``errors`` holds the first MAX_REPORTED, ``total`` all."""

    errors: list[FieldError]
    total: int = 0
    too_large: bool = field(default=False)

    def __post_init__(self) -> None:
        self.total = max(self.total, len(self.errors))
        self.errors = self.errors[:MAX_REPORTED]

    def __str__(self) -> str:
        return f"{self.errors[0].field}: {self.errors[0].message}" if self.errors else "invalid"


def _dotted(parts: Sequence[Any]) -> str:
    return ".".join(str(p) for p in parts)


def field_errors(exc: ValidationError, prefix: Sequence[Any] = ()) -> list[FieldError]:
    """Pydantic's errors as fields; an event-level rule names its fields through ``ctx.fields``."""
    found: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [*prefix, *err["loc"]]
        message = err["msg"].removeprefix("Value error, ")
        named = (err.get("ctx") or {}).get("fields")
        if named:
            found.extend(FieldError(_dotted([*loc, name]), message) for name in named)
        else:
            found.append(FieldError(_dotted(loc) or "body", message))
    return found


def decode_json(body: bytes) -> Any:
    """The body as JSON; NaN/Infinity and nesting deeper than Python's stack are refused."""

    def _constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(body, parse_constant=_constant)
    except RecursionError:
        raise Invalid([FieldError("body", "not valid JSON (nested too deeply)")]) from None
    except ValueError as exc:
        raise Invalid([FieldError("body", f"not valid JSON ({exc})")]) from None


def batch_conflicts(events: Sequence[tuple[int, HREventIn]], place: Callable[[int], str],
                    field_of: Callable[[int, str], str]) -> list[FieldError]:
    """The same event_id twice, or the same person hired twice, in one batch or file: each
    reported at the later place, naming the earlier one. ``events`` pairs each event with its
    position (index or line); ``place(pos)`` names a position ("events.1", "line 3")."""
    errors: list[FieldError] = []
    first_id: dict[str, int] = {}
    first_hire: dict[str, int] = {}
    for pos, event in events:
        earlier = first_id.setdefault(event.event_id, pos)
        if earlier != pos:
            errors.append(FieldError(field_of(pos, "event_id"),
                                     f"{event.event_id!r} is also the event_id of {place(earlier)}; "
                                     "each event needs its own event_id"))
            continue
        if event.type == EventType.HIRE:
            earlier = first_hire.setdefault(event.employee_id, pos)
            if earlier != pos:
                errors.append(FieldError(field_of(pos, "employee_id"),
                                         f"{event.employee_id!r} is hired twice (also at {place(earlier)}); "
                                         "send one hire per person"))
    return errors


def parse_request(body: bytes, *, window: EffectiveWindow, max_events: int) -> tuple[list[HREventIn], bool]:
    """``POST /hr/events``: one event or ``{"events": [...]}``. Returns (events, is_batch);
    raises Invalid naming every bad field (``too_large`` when there are more than max_events)."""
    data = decode_json(body)
    is_batch = isinstance(data, dict) and "events" in data
    context = {"window": window}
    if not is_batch:
        try:
            return [_event.validate_python(data, context=context)], False
        except ValidationError as exc:
            raise Invalid(field_errors(exc)) from None
    items = data["events"]
    errors: list[FieldError] = []
    if extra := sorted(set(data) - {"events"}):
        errors.append(FieldError(extra[0], "Extra inputs are not permitted"))
    if not isinstance(items, list):
        raise Invalid([*errors, FieldError("events", "Input should be a valid list")])
    if not items:
        raise Invalid([*errors, FieldError("events", "List should have at least 1 item")])
    if len(items) > max_events:
        raise Invalid([FieldError("events", f"at most {max_events} per request, not {len(items)}")],
                      too_large=True)
    valid: list[tuple[int, HREventIn]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, _event.validate_python(item, context=context)))
        except ValidationError as exc:
            errors.extend(field_errors(exc, ("events", index)))
    errors.extend(batch_conflicts(valid, lambda i: f"events.{i}", lambda i, name: f"events.{i}.{name}"))
    if errors:
        errors.sort(key=lambda e: _position(e.field))
        raise Invalid(errors)
    return [event for _, event in valid], True


def _position(field: str) -> int:
    parts = field.split(".")
    return int(parts[1]) if len(parts) > 1 and parts[0] == "events" and parts[1].isdigit() else -1
