"""Apply a source's webhook mapping to a payload: the HR events it becomes (validated by the
very models ``POST /hr/events`` uses) and the records it ignores, with the reason.

Per record, in order:

1. ``type`` is evaluated and looked up in ``type_map`` (without a map, the value must be an
   event type itself). No entry, or the entry ``ignore``: the record is *ignored* (not stored,
   answered 202 with the reason), as a HiBob ping or a notice the service has no use for.
2. ``event_id``: the expression's value, or, without one, the SHA-256 of the record's canonical
   JSON (a redelivery of the same record is the same event, so idempotent); either way prefixed
   with ``<source>:`` so two sources can never claim the same event id.
3. ``employee_id``, ``effective_at`` (an RFC 3339 date-time; a date, or a date-time without
   offset, is read in ``effective_timezone``), each attribute and each ``extra`` key. An
   attribute whose expression gives null is left out: the event does not change it.

Any value the models refuse is an ``Invalid`` naming the field as ``records[i].attributes.x``;
one bad record refuses the whole payload (nothing is stored).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jmespath.exceptions import JMESPathError
from pydantic import TypeAdapter, ValidationError

from provisioner.hr_sources.webhooks.section import IGNORE, WebhookMapping
from provisioner.intake.schemas import EffectiveWindow, HREventIn
from provisioner.intake.validation import FieldError, Invalid, batch_conflicts, field_errors
from provisioner.jsonutil import canonical

MAX_RECORDS = 1000
_event = TypeAdapter(HREventIn)


@dataclass(frozen=True, slots=True)
class Ignored:
    record: int
    reason: str


@dataclass
class Mapped:
    events: list[HREventIn] = field(default_factory=list)
    records: list[int] = field(default_factory=list)  # the record each event came from
    ignored: list[Ignored] = field(default_factory=list)


class _Bad(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field_name, message


def _place(index: int, name: str = "") -> str:
    return f"records[{index}]" + (f".{name}" if name else "")


def records_of(mapping: WebhookMapping, payload: Any) -> list[Any]:
    """The records of the payload: ``records``' value (a list; an object is one record), or the
    payload itself."""
    expr = mapping.expression("records")
    if expr is None:
        return [payload]
    try:
        found = expr.search(payload)
    except JMESPathError as exc:
        raise Invalid([FieldError("records", f"the 'records' expression failed: {exc}")]) from None
    if found is None:
        return []
    if isinstance(found, dict):
        return [found]
    if not isinstance(found, list):
        raise Invalid([FieldError("records", f"the 'records' expression gave a {type(found).__name__}, "
                                             "not a list of records")])
    if len(found) > MAX_RECORDS:
        raise Invalid([FieldError("records", f"at most {MAX_RECORDS} records per payload, not {len(found)}")],
                      too_large=True)
    return found


def _value(mapping: WebhookMapping, name: str, record: Any) -> Any:
    expr = mapping.expression(name)
    if expr is None:
        return None
    try:
        return expr.search(record)
    except JMESPathError as exc:
        raise _Bad(name, f"the expression {expr.expression!r} failed: {str(exc).splitlines()[0]}") from None


def _identifier(value: Any) -> Any:
    """HR systems send ids as numbers too: ``12345`` and ``"12345"`` are the same employee."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _effective(mapping: WebhookMapping, value: Any) -> Any:
    """An RFC 3339 date-time as is; a date (its midnight) or an offset-less date-time in the
    mapping's time zone; anything else left for the model to refuse."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        return parsed.isoformat()
    zone = mapping.zone()
    if zone is None:
        raise _Bad("effective_at", f"{value!r} has no UTC offset: set 'effective_timezone' in the "
                                   "source file to say in which time zone it is")
    return parsed.replace(tzinfo=zone).isoformat()


def _event_type(mapping: WebhookMapping, value: Any) -> str | None:
    """The event type for the record, or None when it is ignored."""
    if mapping.type_map:
        key = value if isinstance(value, str) else json.dumps(value)  # 3 -> "3", as the map's keys
        return mapping.type_map.get(key)
    return value if isinstance(value, str) else None


def _record_event(mapping: WebhookMapping, source: str, record: Any) -> dict[str, Any] | str:
    """The event (as a dict for the model) or the reason it is ignored."""
    raw_type = _value(mapping, "type", record)
    event_type = _event_type(mapping, raw_type)
    if event_type is None:
        if raw_type is None:
            return f"no type: the expression {mapping.type!r} gave nothing"
        return f"type {raw_type!r} is not in the source's type_map"
    if event_type == IGNORE:
        return f"type {raw_type!r} is mapped to 'ignore'"
    given = _identifier(_value(mapping, "event_id", record))
    digest = hashlib.sha256(canonical(record)).hexdigest()
    event: dict[str, Any] = {
        "event_id": f"{source}:{given if given is not None else digest}",
        "type": event_type,
        "employee_id": _identifier(_value(mapping, "employee_id", record)),
        "effective_at": _effective(mapping, _value(mapping, "effective_at", record)),
    }
    attributes = {name: _value(mapping, f"attributes.{name}", record) for name in mapping.attributes}
    attributes = {name: value for name, value in attributes.items() if value is not None}
    extra = {key: _value(mapping, f"attributes.extra.{key}", record) for key in mapping.extra}
    extra = {key: value for key, value in extra.items() if value is not None}
    if extra:
        attributes["extra"] = extra
    if attributes:
        event["attributes"] = attributes
    return event


def apply(mapping: WebhookMapping, source: str, payload: Any, *, window: EffectiveWindow | None) -> Mapped:
    """The payload's events and ignored records; raises Invalid naming every bad field."""
    mapped = Mapped()
    errors: list[FieldError] = []
    valid: list[tuple[int, HREventIn]] = []
    for index, record in enumerate(records_of(mapping, payload)):
        try:
            event = _record_event(mapping, source, record)
        except _Bad as exc:
            errors.append(FieldError(_place(index, exc.field), exc.message))
            continue
        if isinstance(event, str):
            mapped.ignored.append(Ignored(index, event))
            continue
        try:
            valid.append((index, _event.validate_python(event, context={"window": window} if window else None)))
        except ValidationError as exc:
            errors.extend(FieldError(_place(index, e.field), e.message) for e in field_errors(exc))
    errors.extend(batch_conflicts(valid, _place, _place))
    if errors:
        raise Invalid(errors)
    mapped.events = [event for _, event in valid]
    mapped.records = [index for index, _ in valid]
    return mapped
