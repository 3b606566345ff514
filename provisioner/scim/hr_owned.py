"""HR-owned attributes of people from HR are ``readOnly`` over SCIM (RFC 7643 §7 mutability):
a write that changes one is ``400 mutability``; a PUT that leaves one out keeps it."""

from __future__ import annotations

import copy
from typing import Any, Final

from provisioner.scim.schemas import ENTERPRISE_SCHEMA, EnterpriseUser, UserResource, field_name

HR_OWNED_CORE: Final = (
    "userName",
    "name",
    "displayName",
    "nickName",
    "title",
    "userType",
    "active",
    "emails",
)
"""Core attributes HR owns on users whose source is ``"hr"`` (readOnly for SCIM clients)."""

HR_OWNED_ENTERPRISE: Final = ("employeeNumber", "department", "costCenter", "manager")
"""Enterprise-extension attributes HR owns on users whose source is ``"hr"``."""


def hr_owned_view(user: UserResource) -> dict[str, Any]:
    """The HR-owned part of a User, for comparing two states of an HR user."""
    data = user.model_dump()
    view = {key: data.get(key) for key in HR_OWNED_CORE}
    if isinstance(view.get("emails"), list):
        view["emails"] = sorted(view["emails"], key=repr)
    enterprise = data.get(ENTERPRISE_SCHEMA) or {}
    for key in HR_OWNED_ENTERPRISE:
        value = enterprise.get(key)
        if key == "manager" and isinstance(value, dict):
            value = value.get("value")
        view[f"{ENTERPRISE_SCHEMA}:{key}"] = value
    return view


def keep_hr_user_name_case(current: UserResource, updated: UserResource) -> None:
    """A userName that differs from HR's only in case is the same value (``caseExact`` false,
    RFC 7643 §4.1.1): HR's spelling is kept instead of refusing the write as a change."""
    if (
        current.user_name is not None
        and updated.user_name is not None
        and current.user_name.casefold() == updated.user_name.casefold()
    ):
        updated.user_name = current.user_name


def hr_owned_changes(before: UserResource, after: UserResource) -> list[str]:
    """HR-owned attributes whose value differs between two states of an HR user."""
    old, new = hr_owned_view(before), hr_owned_view(after)
    return [key for key in old if old[key] != new[key]]


def keep_hr_owned(current: UserResource, replacement: UserResource) -> None:
    """PUT on an HR user: HR-owned attributes left out of the body keep their value.

    RFC 7644 §3.5.1 lets a PUT ignore readOnly attributes; a value that differs is still
    refused by :func:`hr_owned_changes`.
    """
    for key in HR_OWNED_CORE:
        name = field_name(UserResource, key)
        if getattr(replacement, name) is None:
            setattr(replacement, name, copy.deepcopy(getattr(current, name)))
    current_ext = current[EnterpriseUser]
    if current_ext is None:
        return
    replacement_ext = replacement[EnterpriseUser]
    if replacement_ext is None:
        replacement[EnterpriseUser] = replacement_ext = EnterpriseUser()
    for key in HR_OWNED_ENTERPRISE:
        name = field_name(EnterpriseUser, key)
        if getattr(replacement_ext, name) is None:
            setattr(replacement_ext, name, copy.deepcopy(getattr(current_ext, name)))
