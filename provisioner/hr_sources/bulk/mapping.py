"""How a SCIM User record of a bulk upload becomes the HR attributes of an event.

A mapping pairs an HR attribute (the native event format's names, ``employee_id`` and
``active`` included, or ``extra.<key>``) with a SCIM attribute path:

- ``name.givenName``: a core User attribute, sub-attributes after dots (names compare without
  case, as SCIM's do); for a multi-valued attribute (``addresses.locality``) the item with
  ``primary: true``, else the one of ``type: work``, else the first;
- ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value``: an attribute of an
  extension, after its schema URN;
- ``*:HireDate``: that attribute in any custom extension the record lists (``urn:contoso:employee``);
- ``a | b``: the first of the alternatives the record holds.

:data:`DEFAULT` is the documented default; a source's ``bulk_upload.attributes`` replaces entries
(an empty path turns one off). Custom extension attributes that no entry uses become ``extra``
attributes under their own name (policies can match on them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from provisioner.intake.schemas import HRAttributes

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
_ENT = ENTERPRISE + ":"

DEFAULT: dict[str, str] = {
    "employee_id": f"externalId | {_ENT}employeeNumber",
    "active": "active",
    "given_name": "name.givenName",
    "family_name": "name.familyName",
    "preferred_name": "nickName",
    "title": "title",
    "department": f"{_ENT}department",
    "cost_center": f"{_ENT}costCenter",
    "manager_employee_id": f"{_ENT}manager.value",
    "employment_type": "userType",
    "location": "addresses.locality",
    "job_code": "*:JobCode",
    "start_date": "*:HireDate",
    "end_date": "*:LeaveDate | *:EndDate | *:TerminationDate",
}
"""HR attribute -> SCIM path: the default mapping (README "HR sources: SCIM bulk upload")."""

DATES = frozenset({"start_date", "end_date"})
LOWERED = frozenset({"employment_type"})  # Entra's userType "Employee" is the policies' "employee"
META = ("employee_id", "active")
TARGETS = frozenset({*META, *(set(HRAttributes.model_fields) - {"extra"})})


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be overridden in a source file (None if it can)."""
    if key in TARGETS or (key.startswith("extra.") and len(key) > len("extra.")):
        return None
    return f"not an HR attribute: one of {', '.join(sorted(TARGETS))}, or extra.<name>"


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a SCIM attribute path this mapping reads (None if it is)."""
    for alt in _alternatives(path):
        urn, attr = _split(alt)
        if not attr or any(not part or not part.replace("_", "").replace("-", "").replace("$", "").isalnum()
                           for part in attr.split(".")):
            return f"{alt!r} is not a SCIM attribute path (name.givenName, urn:...:User:department, *:HireDate)"
    return None


def _alternatives(path: str) -> list[str]:
    return [p.strip() for p in path.split("|") if p.strip()]


def _split(path: str) -> tuple[str | None, str]:
    """(schema URN or ``*`` or None for the core schema, dotted attribute)."""
    if path.startswith("*:"):
        return "*", path[2:]
    if path.lower().startswith("urn:"):
        urn, _, attr = path.rpartition(":")  # attribute names hold no ':'
        return (None if urn.lower() == CORE.lower() else urn), attr
    return None, path


@lru_cache(maxsize=256)
def _compiled(path: str) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
    """A path's alternatives, each (schema or ``*`` or None, attribute names)."""
    return tuple((urn, tuple(attr.split("."))) for urn, attr in map(_split, _alternatives(path)))


def _get(node: Any, name: str) -> tuple[bool, Any, str]:
    """(present, value, the key as sent) of ``name`` in a JSON object, without case."""
    if not isinstance(node, dict):
        return False, None, name
    if name in node:
        return True, node[name], name
    folded = name.casefold()
    for key, value in node.items():
        if isinstance(key, str) and key.casefold() == folded:
            return True, value, key
    return False, None, name


def _pick(items: list[Any]) -> tuple[int, Any]:
    for flag in ("primary", "type"):
        for i, item in enumerate(items):
            if isinstance(item, dict) and (item.get("primary") is True if flag == "primary"
                                           else str(item.get("type", "")).lower() == "work"):
                return i, item
    return 0, items[0]


class Found(NamedTuple):
    value: Any
    where: str  # the place in ``data`` as sent, SCIM style: name.givenName, urn:contoso:employee:HireDate
    schema: str | None = None  # the extension it was read from
    top: str = ""  # the attribute (as sent) directly under the schema


def resolve(data: Mapping[str, Any], path: str, custom: list[str]) -> Found | None:
    """The value at ``path`` (the first alternative present), or None."""
    for urn, parts in _compiled(path):
        roots: list[tuple[Any, str | None]]
        if urn is None:
            roots = [(data, None)]
        elif urn == "*":
            roots = [(data.get(u), u) for u in custom]
        else:
            present, node, key = _get(data, urn)
            roots = [(node, key)] if present else []
        for node, schema in roots:
            found = _walk(node, parts, schema)
            if found is not None:
                return found
    return None


def _walk(node: Any, parts: tuple[str, ...], schema: str | None) -> Found | None:
    names: list[str] = []
    for part in parts:
        if isinstance(node, list):
            if not node:
                return None
            index, node = _pick(node)
            names[-1] += f"[{index}]"
        present, node, key = _get(node, part)
        if not present or node is None:
            return None
        names.append(key)
    where = ".".join(names)
    return Found(node, f"{schema}:{where}" if schema else where, schema, names[0].split("[")[0])


@dataclass
class Mapped:
    """One record's HR data; ``places`` names where each HR field came from in the record."""

    employee_id: Any = None
    active: Any = None
    attributes: dict[str, Any] | None = None
    places: dict[str, str] | None = None
    problems: list[tuple[str, str]] | None = None  # (place in data, message)


def effective(overrides: Mapping[str, str]) -> dict[str, str]:
    """The default mapping with a source's overrides (an empty path turns an entry off)."""
    merged = {**DEFAULT, **overrides}
    return {k: v for k, v in merged.items() if v.strip()}


def map_record(data: Mapping[str, Any], mapping: Mapping[str, str]) -> Mapped:
    """The HR attributes of one record's ``data``, unvalidated except for dates and kinds."""
    listed = [s for s in data.get("schemas") or [] if isinstance(s, str)]
    custom = [s for s in listed if s.lower() not in (CORE.lower(), ENTERPRISE.lower()) and s in data]
    out = Mapped(attributes={}, places={}, problems=[])
    used: set[tuple[str, str]] = set()
    for field, path in mapping.items():
        found = resolve(data, path, custom)
        if found is None:
            continue
        assert out.places is not None and out.attributes is not None and out.problems is not None
        out.places[field] = found.where
        if found.schema is not None:
            used.add((found.schema, found.top))
        value = found.value
        if field == "active":
            out.active = value
            continue
        if isinstance(value, (dict, list)):
            out.problems.append((found.where, "a single value is expected here, not an object or a list"))
            continue
        if field.startswith("extra."):
            out.attributes.setdefault("extra", {})[field[len("extra."):]] = value
            continue
        if field in DATES:
            value, problem = _date(value)
            if problem:
                out.problems.append((found.where, problem))
                continue
        elif not isinstance(value, str):
            out.problems.append((found.where, f"a string is expected, not {value!r}"))
            continue
        elif field in LOWERED:
            value = value.lower()
        if field == "employee_id":
            out.employee_id = value
        else:
            out.attributes[field] = value
    for urn in custom:  # the custom attributes no entry took become extra attributes
        block = data.get(urn)
        if not isinstance(block, dict):
            continue
        for key, value in block.items():
            if (urn, key) not in used:
                out.attributes.setdefault("extra", {})[key] = value
                out.places[f"extra.{key}"] = f"{urn}:{key}"
    return out


def _date(value: Any) -> tuple[Any, str | None]:
    """A date from ``2026-03-01`` or an RFC 3339 date-time (its date part)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text), None
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date(), None
        except ValueError:
            pass
    return None, f"a date (2026-03-01) or date-time (2026-03-01T00:00:00Z), not {value!r}"
