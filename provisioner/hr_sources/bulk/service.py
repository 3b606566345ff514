"""A SCIM BulkRequest of an HR source as intake events: every operation checked before any is
stored, so a request is stored whole or not at all.

Each operation is one worker's record. Its event type comes from the record and from what the
service knows of the person: their state once HR's pending events due by the time the event
would take effect are applied (the service's own contract ends are not counted: a worker with an
end date ahead is still active until then):

==============================  ======================  ===========
record                          person                  event
==============================  ======================  ===========
``active`` true (or absent)     unknown                 hire
``active`` true (or absent)     terminated              rehire
``active`` true (or absent)     pre-hire, active, leave update
``active`` false                not terminated          terminate
``active`` false                terminated              update (a correction to a leaver's record)
==============================  ======================  ===========

A record says how things stand now, as Entra's model has it: a hire is effective at its start
date (``HireDate``) when that lies ahead, else now (a rehire too); a termination at the end of its leave date
(``LeaveDate``, in ``PROVISIONER_CONTRACT_END_TIMEZONE``) when that lies ahead, else now (the
dates themselves are kept as ``start_date`` / ``end_date``); anything else now. The event id is derived from the source and the
record's content: a record the source sent last for that person is recognised as a repeat (its
event is answered again, nothing is stored), while the same content after a different record is a
new event (a change back).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from provisioner.hr_sources.bulk import mapping, repository
from provisioner.hr_sources.bulk.schemas import BULK_REQUEST, MAX_OPERATIONS, HrBulkOperation
from provisioner.identities.lifecycle import EventType, State
from provisioner.intake.contract_end import ends_at
from provisioner.intake.schemas import EffectiveWindow, HREventIn
from provisioner.intake.validation import Invalid, decode_json, field_errors
from provisioner.jsonutil import canonical

_operation = TypeAdapter(HrBulkOperation)


@dataclass(frozen=True, slots=True)
class OperationError:
    index: int | None  # None: the request as a whole
    detail: str
    scim_type: str = "invalidValue"


@dataclass
class Refused(Exception):
    """The request is refused; nothing of it is stored. ``status`` 400, or 413 for too many operations."""

    errors: list[OperationError]
    status: int = 400
    bulk_ids: list[str | None] = field(default_factory=list)

    def __str__(self) -> str:
        return self.errors[0].detail if self.errors else "refused"


@dataclass(frozen=True, slots=True)
class Prepared:
    bulk_id: str
    event: HREventIn


@dataclass(frozen=True, slots=True)
class Rules:
    """What typing and dating the events needs besides the request."""

    source: str
    attributes: dict[str, str]  # the source's effective mapping
    window: EffectiveWindow
    timezone: str  # for a leave date's end


@dataclass
class _Record:
    index: int
    op: HrBulkOperation
    mapped: mapping.Mapped


def read_request(body: bytes) -> list[tuple[int, Any]]:
    """The operations of a BulkRequest body, unvalidated; Refused for a bad envelope."""
    try:
        data = decode_json(body)
    except Invalid as exc:
        raise Refused([OperationError(None, str(exc), "invalidSyntax")]) from None
    if not isinstance(data, dict):
        raise Refused([OperationError(None, "body: a SCIM BulkRequest object is expected", "invalidSyntax")])
    problems: list[OperationError] = []
    schemas = data.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST not in schemas:
        problems.append(OperationError(None, f"schemas: must list {BULK_REQUEST!r}", "invalidValue"))
    if extra := sorted(set(data) - {"schemas", "Operations", "failOnErrors"}):
        problems.append(OperationError(None, f"{extra[0]}: not an attribute of a BulkRequest", "invalidSyntax"))
    operations = data.get("Operations")
    if not isinstance(operations, list) or not operations:
        problems.append(OperationError(None, "Operations: a list of 1 to 50 operations is expected", "invalidValue"))
        raise Refused(problems)
    if len(operations) > MAX_OPERATIONS:
        raise Refused([OperationError(None, f"Operations: at most {MAX_OPERATIONS} per request, not "
                                            f"{len(operations)}; send the rest in further requests", "tooMany")],
                      status=413)
    if problems:
        raise Refused(problems)
    return list(enumerate(operations))


def prepare(session: Session, operations: list[tuple[int, Any]], rules: Rules) -> list[Prepared]:
    """Every operation as an event, or Refused naming each bad operation and attribute."""
    errors: list[OperationError] = []
    records: list[_Record] = []
    first: dict[str, int] = {}
    bulk_ids: list[str | None] = []
    seen_bulk: dict[str, int] = {}
    for index, raw in operations:
        bulk_ids.append(raw.get("bulkId") if isinstance(raw, dict) and isinstance(raw.get("bulkId"), str) else None)
        try:
            op = _operation.validate_python(raw)
        except ValidationError as exc:
            errors.extend(OperationError(index, f"Operations[{index}].{e.field}: {e.message}")
                          for e in field_errors(exc))
            continue
        earlier = seen_bulk.setdefault(op.bulkId, index)
        if earlier != index:
            errors.append(OperationError(index, f"Operations[{index}].bulkId: {op.bulkId!r} is also the bulkId "
                                                f"of Operations[{earlier}]; each operation needs its own", "uniqueness"))
            continue
        record = _Record(index, op, mapping.map_record(op.data, rules.attributes))
        problems = _record_problems(record, rules.attributes)
        employee_id = record.mapped.employee_id
        earlier = first.setdefault(employee_id, index) if employee_id else index
        if earlier != index:
            problems.append(OperationError(index, f"{_at(record, 'employee_id', rules.attributes)}: {employee_id!r} "
                                                  f"is also the worker of Operations[{earlier}]; send one record "
                                                  "per worker in a request", "uniqueness"))
        if problems:
            errors.extend(problems)
            continue
        records.append(record)
    people = repository.people(session, rules.source, [r.mapped.employee_id for r in records])
    prepared: list[Prepared] = []
    for record in records:
        try:
            prepared.append(Prepared(record.op.bulkId, _event(record, people[record.mapped.employee_id], rules)))
        except ValidationError as exc:
            errors.extend(OperationError(record.index, f"{_at(record, e.field, rules.attributes)}: {e.message}")
                          for e in field_errors(exc))
    if errors:
        errors.sort(key=lambda e: -1 if e.index is None else e.index)
        raise Refused(errors, bulk_ids=bulk_ids)
    return prepared


def _record_problems(record: _Record, attributes: dict[str, str]) -> list[OperationError]:
    i, data, mapped = record.index, record.op.data, record.mapped
    found: list[OperationError] = []
    schemas = data.get("schemas")
    if not isinstance(schemas, list) or mapping.CORE not in schemas:
        found.append(OperationError(i, f"Operations[{i}].data.schemas: must list {mapping.CORE!r}"))
    found.extend(OperationError(i, f"Operations[{i}].data.{where}: {message}")
                 for where, message in mapped.problems or [])
    if mapped.employee_id in (None, ""):
        found.append(OperationError(i, f"{_at(record, 'employee_id', attributes)}: required: the worker's "
                                       "employee id (the HR system's id of the person)"))
    if mapped.active is not None and not isinstance(mapped.active, bool):
        found.append(OperationError(i, f"{_at(record, 'active', attributes)}: true or false, "
                                       f"not {mapped.active!r}"))
    return found


def content_id(source: str, data: dict[str, Any]) -> str:
    """The part of an event id that names a record's content (per source)."""
    return hashlib.sha256(canonical({"source": source, "data": data})).hexdigest()[:32]


def _event(record: _Record, person: repository.Person, rules: Rules) -> HREventIn:
    base = f"bulk-{content_id(rules.source, record.op.data)}-"
    if person.latest_event_id is not None and person.latest_event_id.startswith(base) and person.latest_payload:
        return HREventIn.model_validate(person.latest_payload)  # a repeat: the very same event again
    mapped = record.mapped
    attributes = dict(mapped.attributes or {})
    active = mapped.active is not False
    now = rules.window.now
    starts = ends = now
    if isinstance(attributes.get("start_date"), date):
        starts = max(now, datetime.combine(attributes["start_date"], time(0), tzinfo=UTC))
    if isinstance(attributes.get("end_date"), date):
        ends = max(now, ends_at(attributes["end_date"], rules.timezone))
    # The person as they will be when a (re)hire or termination of this record would take effect.
    etype = _type(active, person.state_at(starts if active else ends))
    effective = {EventType.HIRE: starts, EventType.REHIRE: starts, EventType.TERMINATE: ends}.get(etype, now)
    return HREventIn.model_validate(
        {"event_id": f"{base}{person.events_from_source + 1}", "type": etype, "employee_id": mapped.employee_id,
         "effective_at": effective, "attributes": attributes}, context={"window": rules.window})


def _type(active: bool, state: State | None) -> EventType:
    if not active:
        return EventType.UPDATE if state == State.TERMINATED else EventType.TERMINATE
    if state is None:
        return EventType.HIRE
    return EventType.REHIRE if state == State.TERMINATED else EventType.UPDATE


def _at(record: _Record, hr_field: str, attributes: dict[str, str]) -> str:
    """Where in the request an HR field (``attributes.given_name``, ``effective_at``) comes from."""
    name = hr_field.removeprefix("attributes.")
    if name == "effective_at":
        name = "end_date" if "end_date" in (record.mapped.places or {}) else "start_date"
    places = record.mapped.places or {}
    where = places.get(name)
    if where is None and name.startswith("extra."):
        where = places.get(".".join(name.split(".")[:2]))
    if where is None:  # not in the record: name the first path the mapping reads it from
        path = attributes.get(name, name)
        where = path.split("|")[0].strip().replace("*:", "<extension>:")
    return f"Operations[{record.index}].data.{where}"

