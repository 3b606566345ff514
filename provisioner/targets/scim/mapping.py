"""From the person (``AccountSpec``) to SCIM User resources and PATCH operations, built with
scim2-models (RFC 7643 §4.1 core User, §4.3 enterprise extension)."""

from __future__ import annotations

import string
from dataclasses import asdict
from typing import Any

from scim2_models import (
    Context,
    Email,
    EnterpriseUser,
    Manager,
    Name,
    PatchOp,
    PatchOperation,
    User,
)

from provisioner.targets.contract import AccountSpec
from provisioner.targets.scim.config import ENTERPRISE

ScimUser = User[EnterpriseUser]

# Mapping names to PATCH paths (RFC 7644 §3.5.2 path syntax).
_PATCH_PATHS = {"enterprise.manager": f"{ENTERPRISE}:manager"}
_SNAKE = {"userName": "user_name", "externalId": "external_id", "displayName": "display_name",
          "nickName": "nick_name", "title": "title", "userType": "user_type",
          "preferredLanguage": "preferred_language", "locale": "locale", "timezone": "timezone",
          "profileUrl": "profile_url", "givenName": "given_name", "familyName": "family_name",
          "formatted": "formatted", "middleName": "middle_name", "honorificPrefix": "honorific_prefix",
          "honorificSuffix": "honorific_suffix", "employeeNumber": "employee_number",
          "costCenter": "cost_center", "organization": "organization", "division": "division",
          "department": "department"}


def render(mapping: dict[str, str], spec: AccountSpec) -> dict[str, str]:
    """Each mapped attribute's value for this person; attributes with no value are left out
    (a template naming only empty fields renders to nothing)."""
    values = {k: v for k, v in asdict(spec).items() if k != "extra"}
    out: dict[str, str] = {}
    for attr, template in mapping.items():
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        if fields and all(values.get(f) in (None, "") for f in fields):
            continue
        text = template.format_map({k: "" if v is None else v for k, v in values.items()}).strip()
        if text:
            out[attr] = text
    return out


def user_resource(mapping: dict[str, str], spec: AccountSpec, *, active: bool | None = None) -> ScimUser:
    """The User to POST (RFC 7644 §3.3) or PUT (§3.5.1)."""
    values = render(mapping, spec)
    user = ScimUser(user_name=values.get("userName", spec.login),
                    active=spec.enabled if active is None else active)
    name: dict[str, str] = {}
    enterprise: dict[str, Any] = {}
    for attr, value in values.items():
        if attr == "userName":
            continue
        if attr == "emails.work":
            user.emails = [Email(value=value, type="work", primary=True)]
        elif attr.startswith("name."):
            name[_SNAKE[attr.removeprefix("name.")]] = value
        elif attr == "enterprise.manager":
            enterprise["manager"] = Manager(value=value)
        elif attr.startswith("enterprise."):
            enterprise[_SNAKE[attr.removeprefix("enterprise.")]] = value
        else:
            setattr(user, _SNAKE[attr], value)
    if name:
        user.name = Name(**name)
    if enterprise:
        user[EnterpriseUser] = EnterpriseUser(**enterprise)
    return user


def creation_body(mapping: dict[str, str], spec: AccountSpec) -> dict[str, Any]:
    return user_resource(mapping, spec).model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)


def replacement_body(mapping: dict[str, str], spec: AccountSpec | None, current: dict[str, Any],
                     *, active: bool | None = None) -> dict[str, Any]:
    """A PUT body (RFC 7644 §3.5.1) for servers without PATCH: what the server holds, with the
    mapped attributes (and ``active``) laid over it, so attributes the app owns are kept."""
    body = {k: v for k, v in current.items() if k not in ("meta", "groups")}
    if spec is not None:
        mapped = user_resource(mapping, spec).model_dump(scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        for key, value in mapped.items():
            if key == "schemas":
                body["schemas"] = sorted(set(body.get("schemas", [])) | set(value))
            elif isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            elif key == "emails":
                others = [e for e in body.get("emails") or [] if e.get("type") != "work"]
                body["emails"] = value + others
            elif key != "active":
                body[key] = value
    if active is not None:
        body["active"] = active
    return body


def update_patch(mapping: dict[str, str], spec: AccountSpec) -> dict[str, Any]:
    """PATCH replace of every mapped attribute that has a value (RFC 7644 §3.5.2.3).

    Attributes whose HR value is empty are left as they are rather than removed: a remove of
    an attribute the server never held is an error on some servers (``noTarget``).
    """
    values = render(mapping, spec)
    ops = []
    for attr, value in values.items():
        if attr == "emails.work":
            # A replace on ``emails[type eq "work"].value`` fails with 400 noTarget when the
            # account has no work e-mail yet (§3.5.2.3, e.g. a linked account): remove the work
            # entry (no-op when absent) and add the new one, leaving other e-mails alone.
            ops.append(PatchOperation[ScimUser](op="remove", path='emails[type eq "work"]'))
            ops.append(PatchOperation[ScimUser](op="add", path="emails",
                                                value=[{"value": value, "type": "work", "primary": True}]))
            continue
        if attr.startswith("enterprise.") and attr not in _PATCH_PATHS:
            path = f"{ENTERPRISE}:{attr.removeprefix('enterprise.')}"
        else:
            path = _PATCH_PATHS.get(attr, attr)
        patch_value: Any = {"value": value} if attr == "enterprise.manager" else value
        ops.append(PatchOperation[ScimUser](op="replace", path=path, value=patch_value))
    return PatchOp[ScimUser](operations=ops).model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)


def active_patch(active: bool) -> dict[str, Any]:
    """Enable or disable (RFC 7644 §3.5.2.3 replace on ``active``)."""
    op = PatchOperation[ScimUser](op="replace", path="active", value=active)
    return PatchOp[ScimUser](operations=[op]).model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)
