"""Rendering of column-only Users without building scim2-models objects (the read hot path).

Building a ``User[EnterpriseUser]`` from a row and dumping it costs scim2-models about 0.5 ms
(its Python validators and serialisers), which is most of an indexed ``userName eq`` lookup.
An identity whose SCIM attributes all live in columns (every HR user, and SCIM users without
extra attributes) has a fixed shape, so its response is built here as a plain dict in the
order and format scim2-models dumps it (field order, ``...Z`` datetimes, normalised e-mail
addresses, unassigned attributes left out), and serialised with orjson.

:func:`user_dict` returns None for any other identity (stored attributes written by a client,
``active`` unassigned): those still go through the models. ``tests/scim_endpoint/test_fast.py``
checks that both paths give the same body for a range of identities.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from pydantic import EmailStr, TypeAdapter, ValidationError

from provisioner.scim.schemas import ENTERPRISE_SCHEMA, USER_SCHEMA, Ref, etag

_EMAIL: Final = TypeAdapter(EmailStr)
_USER_SCHEMAS: Final = (USER_SCHEMA,)
_USER_SCHEMAS_ENTERPRISE: Final = (USER_SCHEMA, ENTERPRISE_SCHEMA)

LIST_RESPONSE_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def _datetime(value: datetime) -> str:
    """A UTC datetime as pydantic dumps it (``2026-01-02T03:04:05.123456Z``)."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


# A plain ASCII address: a dot-atom local part (a subset of RFC 5322 atext) and a host name.
_PLAIN_LOCAL: Final = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*")
_PLAIN_DOMAIN: Final = re.compile(r"[A-Za-z0-9.-]+")
_MAX_ADDRESS: Final = 254  # RFC 5321 (email-validator's EMAIL_MAX_LENGTH)


def normalised_email(value: str) -> str | None:
    """The address as scim2-models keeps it (``EmailStr``, normalised), None if invalid.

    email-validator costs about 130 µs an address, most of it checking the domain, so a plain
    address is put together from its local part, which email-validator returns unchanged
    (an ASCII dot-atom that is not a case-insensitive mailbox name such as ``postmaster``),
    and its domain, validated once per domain; anything else is validated whole (and kept).
    ``tests/scim_endpoint/test_fast.py`` compares both with email-validator.
    """
    local, at, domain = value.partition("@")
    if (
        at
        and _PLAIN_LOCAL.fullmatch(local)
        and _PLAIN_DOMAIN.fullmatch(domain)
        and local.lower() not in CASE_INSENSITIVE_MAILBOX_NAMES
    ):
        normalised = _domain(domain)
        if normalised is None:
            return None  # the domain is invalid, whatever the local part
        if normalised.isascii():
            if len(local) + 1 + max(len(domain), len(normalised)) > _MAX_ADDRESS:
                return None
            return f"{local}@{normalised}"
    return _whole_email(value)


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """The normalised domain of ``a@domain``, None if that address is invalid (which, for
    a one-character local part, only the domain can make it)."""
    address = _whole_email(f"a@{domain}")
    return None if address is None else address.partition("@")[2]


@lru_cache(maxsize=65536)
def _whole_email(value: str) -> str | None:
    try:
        return _EMAIL.validate_python(value)
    except ValidationError:
        return None


def is_column_only(identity: Any) -> bool:
    """Whether every SCIM attribute of the identity lives in a column."""
    scim = (identity.extra or {}).get("scim") or {}
    return not scim.get("attributes") and not scim.get("activeUnassigned")


def user_dict(
    identity: Any,
    *,
    base_url: str,
    groups: Sequence[Ref] | None,
    manager: Ref | None,
) -> dict[str, Any] | None:
    """The response body of a User (no ``attributes``/``excludedAttributes``), or None when
    the identity is not column-only and must be rendered by the models.

    ``identity`` is an :class:`~provisioner.identities.models.Identity` or a row of its table.
    """
    if not is_column_only(identity):
        return None
    base = base_url.rstrip("/")
    user_id = identity.id
    location = f"{base}/Users/{user_id}"
    body: dict[str, Any] = {"schemas": _USER_SCHEMAS, "id": user_id}
    if identity.external_id is not None:
        body["externalId"] = identity.external_id
    body["meta"] = {
        "resourceType": "User",
        "created": _datetime(identity.created_at),
        "lastModified": _datetime(identity.updated_at),
        "location": location,
        "version": etag(identity.version),
    }
    body["userName"] = identity.user_name
    name = {}
    if identity.family_name is not None:
        name["familyName"] = identity.family_name
    if identity.given_name is not None:
        name["givenName"] = identity.given_name
    if name:
        body["name"] = name
    for key, value in (
        ("displayName", identity.display_name),
        ("nickName", identity.preferred_name),
        ("title", identity.title),
        ("userType", identity.employment_type),
        ("active", identity.active),
    ):
        if value is not None:
            body[key] = value
    if identity.source == "hr" and identity.email:
        email = normalised_email(identity.email)
        if email is not None:
            body["emails"] = [{"value": email, "type": "work", "primary": True}]
    if groups:
        body["groups"] = [
            {
                "value": group.id,
                "$ref": f"{base}/Groups/{group.id}",
                "display": group.display,
                "type": "direct",
            }
            if group.display is not None
            else {"value": group.id, "$ref": f"{base}/Groups/{group.id}", "type": "direct"}
            for group in groups
        ]
    enterprise: dict[str, Any] = {}
    for key, value in (
        ("employeeNumber", identity.employee_id),
        ("costCenter", identity.cost_center),
        ("department", identity.department),
    ):
        if value is not None:
            enterprise[key] = value
    if manager is not None:
        ref = {"value": manager.id, "$ref": f"{base}/Users/{manager.id}"}
        if manager.display is not None:
            ref["displayName"] = manager.display
        enterprise["manager"] = ref
    if enterprise:
        body["schemas"] = _USER_SCHEMAS_ENTERPRISE
        body[ENTERPRISE_SCHEMA] = enterprise
    return body


def list_body(total: int, start_index: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A ListResponse body (RFC 7644 §3.4.2) in scim2-models' order, ``Resources`` always."""
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
