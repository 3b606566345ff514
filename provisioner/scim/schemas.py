"""SCIM resources (scim2-models) and their mapping to and from the service's rows.

* Users are ``User[EnterpriseUser]`` (RFC 7643 §4.1 and §4.3) backed by
  :class:`~provisioner.identities.models.Identity` (the service's own :class:`EnterpriseUser`).
* Groups are ``Group`` (RFC 7643 §4.2) backed by
  :class:`~provisioner.directory.models.DirectoryGroup` and its members.

Attributes that have a column are stored in it, so filters run on indexes; every other
attribute a client writes (phone numbers, addresses...) is kept verbatim, as SCIM JSON, under ``Identity.extra["scim"]["attributes"]`` and returned as written.

For users whose ``source`` is ``"hr"`` the column-backed attributes are owned by HR
(:mod:`provisioner.scim.hr_owned`): they behave as ``readOnly`` and a write
that changes one is refused with ``400 mutability`` (RFC 7644 §3.5.2, §3.12).
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

from pydantic import Field, ValidationError, model_validator
from scim2_models import (
    CaseExact,
    Group,
    GroupMember,
    InvalidValueException,
    Mutability,
    Reference,
    Required,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    Uniqueness,
    User,
)
from scim2_models import EnterpriseUser as _ScimEnterpriseUser
from scim2_models import Manager as _ScimManager

from provisioner.directory.models import DirectoryGroup
from provisioner.identities.models import Identity
from provisioner.scim.config import service_provider_config

log = logging.getLogger(__name__)


def _inherited(model: Any, name: str, **kwargs: Any) -> Any:
    """A field keeping scim2-models' description of ``model.name`` (published on /Schemas)."""
    return Field(None, description=model.model_fields[name].description, **kwargs)


class Manager(_ScimManager):
    """``manager`` of the enterprise extension. RFC 7643 §4.3 calls ``value`` and ``$ref``
    RECOMMENDED, and §8.7.1 has ``"required": false`` for both (scim2-models requires them,
    refusing Okta's PUT with ``{value, displayName}``); the service builds ``$ref`` itself."""

    value: Annotated[str | None, Required.false, CaseExact.true] = _inherited(_ScimManager, "value")
    ref: Annotated[Reference[User] | None, Required.false] = _inherited(
        _ScimManager, "ref", serialization_alias="$ref", validation_alias="$ref"
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        """Entra ID's PATCH sends the manager as the bare id (``{"op": "Add", "path":
        "urn:...:enterprise:2.0:User:manager", "value": "ID"}``): ``{"value": "ID"}``."""
        return {"value": data} if isinstance(data, str) else data


class EnterpriseUser(_ScimEnterpriseUser):
    # The enterprise extension (RFC 7643 §4.3) as the service enforces it: the Manager above,
    # and employeeNumber unique (409 in service_users.py), so "uniqueness": "server" (§7).
    # Same class name and no docstring: /Schemas publishes them as the schema's name and
    # description ("EnterpriseUser", as before).

    employee_number: Annotated[str | None, Uniqueness.server] = _inherited(
        _ScimEnterpriseUser, "employee_number"
    )
    manager: Manager | None = _inherited(_ScimEnterpriseUser, "manager")


UserResource = User[EnterpriseUser]
"""The model of ``/Users``: the core User schema with the enterprise extension."""


class GroupMemberResource(GroupMember):
    """A member of a group. ``display`` is readOnly: it is the member's ``displayName``, kept
    by the service, not a value clients store (RFC 7643 §8.7.1 lists no ``display`` for
    members; clients that send one, as Okta does, have it ignored)."""

    display: Annotated[str | None, Mutability.read_only] = None


class GroupResource(Group):
    """The model of ``/Groups`` (RFC 7643 §4.2); members are Users."""

    # Unique (409 in service_groups.py), so published as "uniqueness": "server" (RFC 7643 §7).
    display_name: Annotated[str | None, Required.true, Uniqueness.server] = _inherited(
        Group, "display_name"
    )

    members: list[GroupMemberResource] | None = None


USER_SCHEMA: Final = str(User.__schema__)
GROUP_SCHEMA: Final = str(Group.__schema__)
ENTERPRISE_SCHEMA: Final = str(EnterpriseUser.__schema__)

POLICY: Final = ScimPolicy(
    # Entra ID: {"op":"Remove","path":"members","value":[{"value":"ID"}]} removes only those.
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    # Entra ID: Add on emails[type eq "work"].value when there is no work email creates it.
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)
"""How far client payloads may depart from RFC 7644 (the Entra ID quirks scim2-models knows)."""

USER_RESOURCE_TYPE: Final = ResourceType.from_resource(UserResource)
GROUP_RESOURCE_TYPE: Final = ResourceType.from_resource(GroupResource)

PROVIDER: Final = ScimProvider(
    models=[User, EnterpriseUser, GroupResource],
    resource_types=[USER_RESOURCE_TYPE, GROUP_RESOURCE_TYPE],
    config=service_provider_config(),
    policy=POLICY,
)
"""The whole description of the service, published on the discovery endpoints (RFC 7644 §4)."""
for _schema in PROVIDER.schemas:  # cached: the published Group schema is "Group" (RFC 7643 §8.7.1),
    if _schema.id == GROUP_SCHEMA:  # not the name and docstring of the class that refines it
        _schema.name = _schema.description = "Group"

_SCIM_KEY: Final = "scim"
_ATTRIBUTES_KEY: Final = "attributes"
_DELETED_KEY: Final = "deleted"
_ACTIVE_UNASSIGNED_KEY: Final = "activeUnassigned"

ModelT = TypeVar("ModelT", bound=Resource[Any])


@dataclass(frozen=True, slots=True)
class Ref:
    """Another resource a resource points at: a group of a user, a member, a manager."""

    id: str
    display: str | None = None


@dataclass(slots=True)
class UserWrite:
    """What a validated User writes: column values, and the rest of its attributes.

    ``columns["active"]`` is None when the User has no ``active`` (the identity then keeps its
    current status, and the attribute is reported unassigned).

    ``manager_id`` is the SCIM id of the manager (``enterprise:manager.value``); the service
    resolves it to ``Identity.manager_employee_id``.

    ``external_id`` goes to ``Identity.external_id`` (indexed, filterable); the client owns it,
    HR user or not (RFC 7643 §3.1).
    """

    columns: dict[str, Any]
    attributes: dict[str, Any]
    manager_id: str | None
    external_id: str | None = None


@dataclass(slots=True)
class GroupWrite:
    """What a validated Group writes."""

    display_name: str
    external_id: str | None
    member_ids: list[str] | None = field(default=None)


@functools.cache
def specialised(generic: Any, model: Any) -> Any:
    """``generic[model]`` (``SearchRequest[User]``, ``ListResponse[...]``...), built once.

    scim2-models re-parametrises its messages on every subscription, which costs about a
    millisecond a request; the classes are immutable, so they are cached here.
    """
    return generic[model]


def location(base_url: str, endpoint: str, resource_id: str) -> str:
    """``meta.location`` of a resource (RFC 7643 §3.1)."""
    return f"{base_url.rstrip('/')}/{endpoint}/{resource_id}"


def etag(version: int) -> str:
    """The weak entity tag of a resource version, also its ``meta.version`` (RFC 7644 §3.14)."""
    return f'W/"{version}"'


# -- Users ----------------------------------------------------------------------------------


def stored_attributes(identity: Identity) -> dict[str, Any]:
    """The SCIM attributes kept in ``extra`` for an identity (a deep copy)."""
    scim = (identity.extra or {}).get(_SCIM_KEY) or {}
    return copy.deepcopy(scim.get(_ATTRIBUTES_KEY) or {})


def with_stored_attributes(identity: Identity, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A new ``extra`` value holding ``attributes`` (assign it: JSON columns are not mutable)."""
    extra = dict(identity.extra or {})
    scim = dict(extra.get(_SCIM_KEY) or {})
    scim[_ATTRIBUTES_KEY] = dict(attributes)
    extra[_SCIM_KEY] = scim
    return extra


def active_unassigned(identity: Identity) -> bool:
    """Whether a SCIM client removed ``active`` (the column then keeps its last value)."""
    scim = (identity.extra or {}).get(_SCIM_KEY) or {}
    return bool(scim.get(_ACTIVE_UNASSIGNED_KEY))


def with_active_unassigned(extra: Mapping[str, Any], unassigned: bool) -> dict[str, Any]:
    """A new ``extra`` recording whether ``active`` is unassigned (RFC 7643 §2.5)."""
    new = dict(extra)
    scim = dict(new.get(_SCIM_KEY) or {})
    if unassigned:
        scim[_ACTIVE_UNASSIGNED_KEY] = True
    else:
        scim.pop(_ACTIVE_UNASSIGNED_KEY, None)
    new[_SCIM_KEY] = scim
    return new


def with_deletion_record(identity: Identity, at: datetime) -> dict[str, Any]:
    """A new ``extra`` recording what a SCIM DELETE released (RFC 7644 §3.6 soft delete)."""
    extra = dict(identity.extra or {})
    scim = dict(extra.get(_SCIM_KEY) or {})
    scim[_DELETED_KEY] = {
        "at": at.isoformat(),
        "userName": identity.user_name,
        "employeeNumber": identity.employee_id,
    }
    extra[_SCIM_KEY] = scim
    return extra


def stored_manager_id(identity: Identity) -> str | None:
    """The manager id a SCIM client wrote, when the manager has no employee number."""
    manager = stored_attributes(identity).get(ENTERPRISE_SCHEMA, {}).get("manager")
    return manager.get("value") if isinstance(manager, dict) else None


def user_from_identity(
    identity: Identity,
    *,
    base_url: str,
    groups: Sequence[Ref] | None,
    manager: Ref | None,
) -> UserResource:
    """The SCIM User of an identity.

    ``groups`` (readOnly, RFC 7643 §4.1.2) and ``manager`` (enterprise, RFC 7643 §4.3) are
    looked up by the caller in bulk; ``groups=None`` leaves the attribute out (not asked for).
    """
    payload = stored_attributes(identity)
    hr = identity.source == "hr"
    payload["schemas"] = [USER_SCHEMA]
    payload["id"] = identity.id
    payload["externalId"] = identity.external_id
    payload["userName"] = identity.user_name

    name = {} if hr else dict(payload.get("name") or {})
    name["givenName"] = identity.given_name
    name["familyName"] = identity.family_name
    payload["name"] = name
    payload["displayName"] = identity.display_name
    payload["nickName"] = identity.preferred_name
    payload["title"] = identity.title
    payload["userType"] = identity.employment_type
    payload["active"] = None if not hr and active_unassigned(identity) else identity.active
    if hr:
        payload["emails"] = (
            [{"value": identity.email, "type": "work", "primary": True}] if identity.email else None
        )

    enterprise = {} if hr else dict(payload.get(ENTERPRISE_SCHEMA) or {})
    enterprise["employeeNumber"] = identity.employee_id
    enterprise["department"] = identity.department
    enterprise["costCenter"] = identity.cost_center
    enterprise["manager"] = (
        {
            "value": manager.id,
            "$ref": location(base_url, "Users", manager.id),
            "displayName": manager.display,
        }
        if manager is not None
        else None
    )
    enterprise = _without_empty(enterprise)
    if enterprise:
        payload[ENTERPRISE_SCHEMA] = enterprise
        payload["schemas"].append(ENTERPRISE_SCHEMA)
    else:
        payload.pop(ENTERPRISE_SCHEMA, None)

    if groups:
        payload["groups"] = [
            {
                "value": group.id,
                "$ref": location(base_url, "Groups", group.id),
                "display": group.display,
                "type": "direct",
            }
            for group in groups
        ]
    payload["meta"] = {
        "resourceType": "User",
        "created": identity.created_at,
        "lastModified": identity.updated_at,
        "location": location(base_url, "Users", identity.id),
        "version": etag(identity.version),
    }
    return _validate_stored(UserResource, _without_empty(payload))


def split_user(user: UserResource) -> UserWrite:
    """Split a User into column values and the attributes kept in ``extra``.

    ``id``, ``meta`` and ``groups`` are readOnly and ``password`` is never stored (the service
    authenticates nobody with it; Okta sends one on POST).
    """
    data = user.model_dump()
    for key in ("schemas", "id", "meta", "groups", "password"):
        data.pop(key, None)
    name = dict(data.pop("name", None) or {})
    enterprise = dict(data.pop(ENTERPRISE_SCHEMA, None) or {})
    manager = enterprise.pop("manager", None) or {}
    manager_id = manager.get("value")
    emails = data.get("emails") or []
    external_id = data.pop("externalId", None)
    columns: dict[str, Any] = {
        "user_name": data.pop("userName", None),
        "given_name": name.pop("givenName", None),
        "family_name": name.pop("familyName", None),
        "display_name": data.pop("displayName", None),
        "preferred_name": data.pop("nickName", None),
        "title": data.pop("title", None),
        "employment_type": data.pop("userType", None),
        "email": work_email(emails),
        "employee_id": enterprise.pop("employeeNumber", None),
        "department": enterprise.pop("department", None),
        "cost_center": enterprise.pop("costCenter", None),
    }
    active = data.pop("active", None)
    columns["active"] = None if active is None else bool(active)
    if name:
        data["name"] = name
    if manager_id:
        enterprise["manager"] = {"value": manager_id}
    if enterprise:
        data[ENTERPRISE_SCHEMA] = enterprise
    return UserWrite(
        columns=columns, attributes=data, manager_id=manager_id, external_id=external_id
    )


def work_email(emails: Sequence[Mapping[str, Any]]) -> str | None:
    """The address kept in ``Identity.email``: the (primary) work email.

    Only this address is indexed, which is what Entra ID queries with
    ``emails[type eq "work"].value eq "..."``.
    """
    work = [e for e in emails if str(e.get("type") or "").lower() == "work" and e.get("value")]
    if not work:
        return None
    primary = [e for e in work if e.get("primary")]
    return str((primary or work)[0]["value"])


# -- Groups ---------------------------------------------------------------------------------


def group_from_row(
    group: DirectoryGroup, *, base_url: str, members: Sequence[Ref] | None
) -> GroupResource:
    """The SCIM Group of a directory group; ``members=None`` leaves members out."""
    payload: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": group.id,
        "externalId": group.external_id,
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "created": group.created_at,
            "lastModified": group.updated_at,
            "location": location(base_url, "Groups", group.id),
            "version": etag(group.version),
        },
    }
    if members:
        payload["members"] = [
            {
                "value": member.id,
                "$ref": location(base_url, "Users", member.id),
                "display": member.display,
                "type": "User",
            }
            for member in members
        ]
    return _validate_stored(GroupResource, _without_empty(payload))


def split_group(group: GroupResource) -> GroupWrite:
    """What a Group writes; members must be Users (the directory has no nested groups)."""
    member_ids: list[str] | None = None
    if group.members is not None:
        member_ids = []
        for member in group.members:
            if member.type is not None and str(member.type).lower() not in ("user", ""):
                raise InvalidValueException(
                    detail=f"members of type {member.type!r} are not supported: only Users"
                )
            if member.value:
                member_ids.append(member.value)
    return GroupWrite(
        display_name=group.display_name or "",
        external_id=group.external_id,
        member_ids=member_ids,
    )


# -- helpers --------------------------------------------------------------------------------


def field_name(model: type[Any], scim_name: str) -> str:
    for name, info in model.model_fields.items():
        if (info.serialization_alias or info.alias or name) == scim_name:
            return name
    raise KeyError(scim_name)


def _without_empty(data: dict[str, Any]) -> dict[str, Any]:
    """Drop None values and empty containers (RFC 7643 §2.5: unassigned attributes)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        kept = _without_empty(value) if isinstance(value, dict) else value
        if kept is None or kept in ({}, []):
            continue
        out[key] = kept
    return out


def _validate_stored(model: type[ModelT], payload: dict[str, Any]) -> ModelT:
    """Build a resource from stored values; a stored value the schema refuses is left out.

    HR data is not validated against SCIM types when it arrives (an e-mail address HR sends
    may not be RFC 5321-valid), and one bad value must not make the whole user unreadable.
    """
    for _attempt in range(5):
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            dropped = False
            for error in exc.errors():
                dropped |= _drop_at(payload, error.get("loc", ()))
            if not dropped:
                raise
            log.warning(
                "scim: dropped invalid stored values of %s %s: %s",
                model.__name__,
                payload.get("id"),
                [e.get("loc") for e in exc.errors()],
            )
    return model.model_validate(payload)


def _drop_at(payload: dict[str, Any], loc: Sequence[Any]) -> bool:
    """Remove the value at an error location (at most two levels deep)."""
    if not loc or loc[0] in ("schemas", "id", "meta", "userName", "displayName"):
        return False
    head = loc[0]
    if head not in payload:
        return False
    if len(loc) >= 2 and isinstance(payload[head], list) and isinstance(loc[1], int):
        items = payload[head]
        if loc[1] < len(items):
            del items[loc[1]]
            if not items:
                del payload[head]
            return True
    if len(loc) >= 2 and isinstance(payload[head], dict) and loc[1] in payload[head]:
        del payload[head][loc[1]]
        return True
    del payload[head]
    return True
