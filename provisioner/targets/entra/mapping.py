"""Which HR attribute feeds which Graph user property: the attribute mapping of an Entra target.

A target file may override any entry under ``mapping:`` (``null`` stops writing a property);
the entries are checked when the file is loaded. Each value is a template of HR attribute
names in braces (``"{cost_center}"``), ``{extra[KEY]}`` for an HR extra attribute, or a
literal (``"Contoso Ltd"``). Defaults (``DEFAULT_MAPPING``)::

    givenName: "{given_name}"            # the preferred name when HR has one
    surname: "{family_name}"
    displayName: "{display_name}"
    department: "{department}"
    jobTitle: "{title}"
    employeeId: "{employee_id}"
    employeeType: "{employment_type}"
    officeLocation: "{location}"
    companyName: "{extra[company]}"
    employeeHireDate: "{start_date}"
    employeeLeaveDateTime: "{end_date}"
    employeeOrgData.costCenter: "{cost_center}"
    employeeOrgData.division: "{extra[division]}"
    usageLocation: accounts.usage_location (a literal), when set

Graph rules kept here (graph.md "Directory data rules", the user resource page):

- A property whose HR value is empty is sent as ``null`` on update, so clearing it in HR clears
  it in Entra ID (a create leaves it out).
- ``employeeHireDate`` and ``employeeLeaveDateTime`` are DateTimeOffset: an HR date ``YYYY-MM-DD``
  is sent as midnight UTC of that day (``YYYY-MM-DDT00:00:00Z``). Writing
  ``employeeLeaveDateTime`` needs ``User-LifeCycleInfo.ReadWrite.All``.
- ``employeeOrgData`` is sent whole (``costCenter`` and ``division``): Graph nulls an omitted one.
- Values longer than Graph's limits are cut to them (``companyName`` 64, ``department`` 64, ``jobTitle`` 128, ...).
"""

from __future__ import annotations

import re
import string
from datetime import date, datetime
from typing import Any

from provisioner.targets.contract import AccountSpec

ORG_DATA = "employeeOrgData"
DATE_PROPERTIES = frozenset({"employeeHireDate", "employeeLeaveDateTime"})

# Graph user properties a mapping may set, with their maximum lengths (None: not documented).
PROPERTIES: dict[str, int | None] = {
    "givenName": 64,
    "surname": 64,
    "displayName": 256,
    "department": 64,
    "jobTitle": 128,
    "employeeId": None,  # 16 in Graph's docs; never cut (match-before-create looks people up by it)
    "employeeType": None,
    "officeLocation": 128,
    "companyName": 64,
    "usageLocation": 2,
    "employeeHireDate": None,
    "employeeLeaveDateTime": None,
    f"{ORG_DATA}.costCenter": None,
    f"{ORG_DATA}.division": None,
    "mobilePhone": 64,
    "preferredLanguage": None,
}
REQUIRED = frozenset({"displayName", "employeeId"})  # match-before-create looks people up by employeeId

# HR attributes a template may name (the identity's HR attributes and what is derived from them).
HR_FIELDS = frozenset({
    "employee_id", "given_name", "family_name", "preferred_name", "display_name", "department",
    "job_code", "title", "location", "cost_center", "manager_employee_id", "employment_type",
    "start_date", "end_date", "extra",
})

DEFAULT_MAPPING: dict[str, str] = {
    "givenName": "{given_name}",
    "surname": "{family_name}",
    "displayName": "{display_name}",
    "department": "{department}",
    "jobTitle": "{title}",
    "employeeId": "{employee_id}",
    "employeeType": "{employment_type}",
    "officeLocation": "{location}",
    "companyName": "{extra[company]}",
    "employeeHireDate": "{start_date}",
    "employeeLeaveDateTime": "{end_date}",
    f"{ORG_DATA}.costCenter": "{cost_center}",
    f"{ORG_DATA}.division": "{extra[division]}",
}

_FIELD = re.compile(r"^(?P<root>[a-z_]+)(?:\[(?P<key>[^\[\]]+)\])?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_mapping(value: dict[str, str | None]) -> dict[str, str | None]:
    """Refuse an unknown Graph property or HR attribute, naming what is known."""
    for prop, template in value.items():
        if prop not in PROPERTIES:
            raise ValueError(f"unknown Graph user property {prop!r} in mapping; known: {', '.join(sorted(PROPERTIES))}")
        if template is None:
            if prop in REQUIRED:
                raise ValueError(f"mapping of {prop!r} cannot be null: the service needs it")
            continue
        if not isinstance(template, str):
            raise ValueError(f"mapping of {prop!r} must be a template string such as \"{{department}}\"")
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise ValueError(f"mapping of {prop!r}: not a valid template ({exc})") from None
        for name in fields:
            match = _FIELD.match(name)
            if match is None or match["root"] not in HR_FIELDS or (match["key"] is None) == (match["root"] == "extra"):
                raise ValueError(f"mapping of {prop!r} uses unknown HR attribute {{{name}}}; known: "
                                 f"{', '.join(sorted(HR_FIELDS - {'extra'}))}, extra[KEY]")
    return value


def effective_mapping(overrides: dict[str, str | None], usage_location: str | None) -> dict[str, str]:
    """The defaults with the target file's entries over them (``null`` drops one)."""
    merged: dict[str, str | None] = dict(DEFAULT_MAPPING)
    if usage_location:
        merged["usageLocation"] = usage_location
    merged.update(overrides)
    return {prop: template for prop, template in merged.items() if template is not None}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _resolve(name: str, values: dict[str, Any]) -> str:
    match = _FIELD.match(name)
    if match is None:
        return ""
    value = values.get(match["root"])
    if match["key"] is not None:
        value = value.get(match["key"]) if isinstance(value, dict) else None
    return _text(value)


def render_template(template: str, values: dict[str, Any]) -> str | None:
    """The template filled in; None when every attribute it names is empty (or the result is)."""
    parts: list[str] = []
    named, filled = 0, 0
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            named += 1
            text = _resolve(name, values)
            filled += bool(text)
            parts.append(text)
    if named and not filled:
        return None
    text = "".join(parts).strip()
    return text or None


def _graph_value(prop: str, text: str | None) -> str | None:
    if text is None:
        return None
    if prop in DATE_PROPERTIES and _DATE.match(text):
        return f"{text}T00:00:00Z"
    limit = PROPERTIES.get(prop)
    return text[:limit] if limit else text


def source_values(spec: AccountSpec) -> dict[str, Any]:
    """What templates read: the HR attributes the spec carries, or its own fields without them."""
    values: dict[str, Any] = {
        "employee_id": spec.employee_id, "given_name": spec.given_name, "family_name": spec.family_name,
        "display_name": spec.display_name, "department": spec.department, "title": spec.job_title,
        "location": spec.office_location, "cost_center": spec.cost_center,
        "employment_type": spec.employee_type, "extra": {},
    }
    values.update(spec.hr)
    return values


def render(mapping: dict[str, str], spec: AccountSpec) -> dict[str, Any]:
    """Every mapped Graph property for this person, ``None`` where HR has no value;
    ``employeeOrgData`` as one object with both of its fields."""
    values = source_values(spec)
    out: dict[str, Any] = {}
    org: dict[str, Any] = {}
    for prop, template in mapping.items():
        value = _graph_value(prop, render_template(template, values))
        if prop.startswith(ORG_DATA + "."):
            org[prop.split(".", 1)[1]] = value
        else:
            out[prop] = value
    if org:
        out[ORG_DATA] = {"costCenter": org.get("costCenter"), "division": org.get("division")}
    if not out.get("displayName"):
        out["displayName"] = spec.display_name or spec.login
    if not out.get("employeeId"):
        out["employeeId"] = spec.employee_id[:16]
    return out


def for_create(properties: dict[str, Any]) -> dict[str, Any]:
    """A create leaves out what has no value (``employeeOrgData`` when both fields are empty)."""
    out = {k: v for k, v in properties.items() if v is not None}
    org = out.get(ORG_DATA)
    if isinstance(org, dict) and all(v is None for v in org.values()):
        del out[ORG_DATA]
    return out
