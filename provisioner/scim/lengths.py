"""How long a value the SCIM endpoint stores: the lengths of the columns it writes.

The limits are read from the SQLAlchemy columns of ``identities`` and ``directory_groups``
(one source: change a column and the SCIM limit follows), so a value the endpoint accepts
always fits its column. PostgreSQL refuses a longer value (it was a 500); SQLite would store it
silently. A value over its column's length is ``400 invalidValue`` naming the SCIM attribute
(RFC 7644 §3.12), on POST, PUT, PATCH and in ``/Bulk``, before anything is written.

Attributes kept verbatim in ``Identity.extra`` (phone numbers, addresses...) have no column and
no length of their own here; the request body limits bound them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from scim2_models import InvalidValueException
from sqlalchemy import String, Table

from provisioner.directory.models import DirectoryGroup
from provisioner.identities.models import Identity

_ENTERPRISE: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

USER_ATTRIBUTES: Final[Mapping[str, str]] = {
    "user_name": "userName",
    "external_id": "externalId",
    "given_name": "name.givenName",
    "family_name": "name.familyName",
    "display_name": "displayName",
    "preferred_name": "nickName",
    "title": "title",
    "employment_type": "userType",
    "email": 'emails[type eq "work"].value',
    "employee_id": f"{_ENTERPRISE}:employeeNumber",
    "department": f"{_ENTERPRISE}:department",
    "cost_center": f"{_ENTERPRISE}:costCenter",
}
"""The ``identities`` column each column-backed User attribute is stored in (see
:func:`provisioner.scim.schemas.split_user`)."""

GROUP_ATTRIBUTES: Final[Mapping[str, str]] = {
    "display_name": "displayName",
    "external_id": "externalId",
}
"""The ``directory_groups`` column each stored Group attribute is stored in."""


def _lengths(table: Table, attributes: Mapping[str, str]) -> dict[str, int]:
    lengths: dict[str, int] = {}
    for column in attributes:
        kind = table.c[column].type
        if not isinstance(kind, String) or kind.length is None:
            raise TypeError(f"{table.name}.{column} has no length")  # a model change: say so
        lengths[column] = kind.length
    return lengths


USER_LENGTHS: Final[Mapping[str, int]] = _lengths(Identity.__table__, USER_ATTRIBUTES)  # type: ignore[arg-type]
"""The most characters each column-backed User attribute holds, by column."""

GROUP_LENGTHS: Final[Mapping[str, int]] = _lengths(DirectoryGroup.__table__, GROUP_ATTRIBUTES)  # type: ignore[arg-type]
"""The most characters each stored Group attribute holds, by column."""


def max_lengths() -> dict[str, dict[str, int]]:
    """The limits by resource type and SCIM attribute (for documentation and tests)."""
    return {
        "User": {USER_ATTRIBUTES[c]: n for c, n in USER_LENGTHS.items()},
        "Group": {GROUP_ATTRIBUTES[c]: n for c, n in GROUP_LENGTHS.items()},
    }


def check_user_values(values: Mapping[str, Any]) -> None:
    """400 invalidValue for the first User value (by column) longer than its column."""
    _check(values, USER_LENGTHS, USER_ATTRIBUTES)


def check_group_values(values: Mapping[str, Any]) -> None:
    """400 invalidValue for the first Group value (by column) longer than its column."""
    _check(values, GROUP_LENGTHS, GROUP_ATTRIBUTES)


def _check(values: Mapping[str, Any], lengths: Mapping[str, int], names: Mapping[str, str]) -> None:
    for column, value in values.items():
        limit = lengths.get(column)
        if limit is None or not isinstance(value, str) or len(value) <= limit:
            continue
        attribute = names[column]
        raise InvalidValueException(
            attribute=attribute,
            detail=f"{attribute} is {len(value)} characters long; at most {limit} are stored",
        )
