"""The user's HR properties as Graph checks them (user resource, v1.0; graph.md "Directory data
rules"), kept apart from the other checks of a user body:

- ``employeeHireDate``, ``employeeLeaveDateTime``: Edm.DateTimeOffset, ISO 8601 with a UTC
  offset (``2026-03-01T00:00:00Z``); anything else is 400 ``BadRequest`` "Cannot convert the
  literal ... to the expected type 'Edm.DateTimeOffset'" (the OData reader's refusal); null clears.
- ``employeeOrgData``: an object of ``costCenter`` and ``division`` (strings or null); on
  update the object replaces the one held, a field left out becomes null; null clears.
- ``companyName`` at most 64 characters, ``employeeType`` a string; null clears.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from provisioner.sandbox.graph.errors import bad_request, invalid_value

DATE_TIME_OFFSET = frozenset({"employeeHireDate", "employeeLeaveDateTime"})
ORG_DATA = "employeeOrgData"
ORG_DATA_FIELDS = ("costCenter", "division")
MAX_LENGTH = {"companyName": 64, "department": 64, "jobTitle": 128, "givenName": 64, "surname": 64,
              "officeLocation": 128, "displayName": 256}  # mailNickname: validate.py (with the UPN rules)
# Edm.DateTimeOffset as JSON: date, time, optional fraction, and an offset (Z or +hh:mm).
_DTO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$")

PROPERTIES = DATE_TIME_OFFSET | {ORG_DATA}


def check(name: str, value: Any) -> None:
    """Raise Graph's 400 for a value of ``name`` Graph refuses (None always clears)."""
    if value is None:
        return
    if name in DATE_TIME_OFFSET:
        if not isinstance(value, str) or not _DTO.match(value) or not _parses(value):
            raise bad_request(f"Cannot convert the literal '{value}' to the expected type "
                              "'Edm.DateTimeOffset'.", code="BadRequest")
    elif name == ORG_DATA:
        if not isinstance(value, dict) or set(value) - {*ORG_DATA_FIELDS, "@odata.type"} or not all(
                value.get(f) is None or isinstance(value.get(f), str) for f in ORG_DATA_FIELDS):
            raise invalid_value(name, "User")
    elif name in MAX_LENGTH and isinstance(value, str) and len(value) > MAX_LENGTH[name]:
        raise invalid_value(name, "User")


def _parses(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def check_body(body: dict[str, Any]) -> None:
    for name, value in body.items():
        check(name, value)


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """The body as Graph stores it: ``employeeOrgData`` with both fields (an omitted one null)."""
    org = body.get(ORG_DATA)
    if isinstance(org, dict):
        return {**body, ORG_DATA: {f: org.get(f) for f in ORG_DATA_FIELDS}}
    return body
