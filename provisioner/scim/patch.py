"""PATCH (RFC 7644 §3.5.2) with scim2-models, and the group-membership fast path.

Operations are validated and applied by scim2-models' ``PatchOp`` under :data:`POLICY`, which
accepts what Entra ID and Okta send:

* Entra ID: ``op`` capitalised (``Add``/``Replace``/``Remove``); booleans as strings
  (``"False"``); ``Replace`` without a path whose value keys are attribute paths
  (``"name.givenName"``) or full extension URNs; ``Add`` on ``emails[type eq "work"].value``
  when there is no work e-mail creates it; ``Remove`` of ``members`` with a ``value`` list
  removes only those members.
* Okta: ``replace`` without a path (``{"active": false}``, ``{"id", "displayName"}``);
  ``remove`` on ``members[value eq "ID"]``; ``add``/``replace`` on ``members``.

Group membership can be large (policy groups have thousands of members), so the membership
operations clients send (add/remove/replace of ``members`` by value) are applied as set
operations on member ids, without loading every member into a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidValueException,
    PatchOp,
    PatchOperation,
    Resource,
)
from scim2_models.path import Comparison

from provisioner.scim.errors import scim_exception_from_validation
from provisioner.scim.schemas import POLICY, GroupResource, specialised


def parse_patch(model: type[Resource[Any]], payload: Any) -> PatchOp[Any]:
    """Validate a PatchOp message for a resource type (400 with the scimType on failure)."""
    try:
        return specialised(PatchOp, model).model_validate(
            _split_filtered_keys(payload),
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=POLICY,
        )
    except ValidationError as exc:
        raise scim_exception_from_validation(exc) from exc


def _split_filtered_keys(payload: Any) -> Any:
    """Entra ID: a path-less operation whose value has a key with a value filter
    (``{"emails[type eq \"work\"].value": "x"}``) becomes an operation on that path, which
    scim2-models resolves (keys that are plain attribute paths it accepts as they are)."""
    if not isinstance(payload, dict):
        return payload
    key = next((k for k in payload if str(k).lower() == "operations"), None)
    operations = payload.get(key) if key is not None else None
    if not isinstance(operations, list):
        return payload
    rewritten: list[Any] = []
    for operation in operations:
        value = operation.get("value") if isinstance(operation, dict) else None
        if (
            isinstance(operation, dict)
            and operation.get("path") is None
            and isinstance(value, dict)
            and any("[" in str(k) for k in value)
        ):
            plain = {k: v for k, v in value.items() if "[" not in str(k)}
            if plain:
                rewritten.append({**operation, "value": plain})
            rewritten.extend(
                {**operation, "path": k, "value": v} for k, v in value.items() if "[" in str(k)
            )
        else:
            rewritten.append(operation)
    return {**payload, key: rewritten}


def apply_patch(resource: Resource[Any], patch: PatchOp[Any]) -> bool:
    """Apply every operation in order, all or nothing; True when the resource changed."""
    return patch.patch(resource, scim_policy=POLICY)


class MembershipAction(StrEnum):
    """What a membership operation does to the member ids."""

    add = "add"
    remove = "remove"
    remove_all = "remove_all"
    replace = "replace"


@dataclass(frozen=True, slots=True)
class MembershipOp:
    """One membership operation, by member id."""

    action: MembershipAction
    ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupPatchPlan:
    """A group PATCH split into membership operations and the other operations.

    ``other`` is None when every operation is a membership one; ``membership`` is None when
    some membership operation is not a plain by-value one (the caller then loads the members
    and applies the whole PATCH generically).
    """

    membership: list[MembershipOp] | None
    other: PatchOp[Any] | None


def plan_group_patch(patch: PatchOp[Any]) -> GroupPatchPlan:
    """Split a group PATCH for the membership fast path."""
    membership: list[MembershipOp] = []
    others: list[PatchOperation[Any]] = []
    for operation in patch.operations or []:
        kind = _membership_op(operation)
        if kind is _GENERIC_MEMBERS:
            _drop_member_display(patch)
            return GroupPatchPlan(membership=None, other=patch)
        if kind is None:
            others.append(operation)
        else:
            membership.append(kind)
    other = specialised(PatchOp, GroupResource)(operations=others) if others else None
    return GroupPatchPlan(membership=membership, other=other)


_GENERIC_MEMBERS = MembershipOp(MembershipAction.replace, ("<generic>",))


def _membership_op(operation: PatchOperation[Any]) -> MembershipOp | None:
    """The membership op of a PATCH operation, None for a non-member one, or _GENERIC_MEMBERS."""
    path = operation.path
    op = operation.op
    if path is None:
        if isinstance(operation.value, dict) and any(
            str(key).lower() == "members" for key in operation.value
        ):
            return _GENERIC_MEMBERS
        return None
    if not path.parts or path.parts[0].lower() != "members" or path.schema:
        return None
    if len(path.parts) != 1:
        return _GENERIC_MEMBERS
    value_filter = path.value_filter
    if value_filter is not None:
        # remove members[value eq "ID"] (Okta)
        if (
            op == PatchOperation.Op.remove
            and isinstance(value_filter, Comparison)
            and value_filter.attr_path.attr.lower() == "value"
            and value_filter.attr_path.sub_attr is None
            and str(value_filter.op) == "eq"
            and isinstance(value_filter.value, str)
        ):
            return MembershipOp(MembershipAction.remove, (value_filter.value,))
        return _GENERIC_MEMBERS
    if op == PatchOperation.Op.remove:
        if operation.value is None:
            return MembershipOp(MembershipAction.remove_all)
        # Entra ID: {"op":"Remove","path":"members","value":[{"value":"ID"}]}
        return MembershipOp(MembershipAction.remove, _member_values(operation.value))
    action = MembershipAction.add if op == PatchOperation.Op.add else MembershipAction.replace
    return MembershipOp(action, _member_values(operation.value))


def _drop_member_display(patch: PatchOp[Any]) -> None:
    """Members' ``display`` is readOnly (derived from the User): drop it from written values,
    as a PUT would ignore it, instead of failing Okta's ``add`` with value/display."""
    for operation in patch.operations or []:
        value = operation.value
        targets_members = (
            operation.path is not None
            and bool(operation.path.parts)
            and (operation.path.parts[0].lower() == "members")
        )
        if operation.path is None and isinstance(value, dict):
            key = next((k for k in value if str(k).lower() == "members"), None)
            entries = value.get(key) if key is not None else None
        elif targets_members:
            entries = value
        else:
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, dict):
                for key in [k for k in entry if str(k).lower() == "display"]:
                    del entry[key]


def _member_values(value: Any) -> tuple[str, ...]:
    entries = value if isinstance(value, list) else [value]
    ids: list[str] = []
    for entry in entries:
        if isinstance(entry, dict):
            member_type = next((v for k, v in entry.items() if k.lower() == "type"), None)
            if member_type is not None and str(member_type).lower() != "user":
                raise InvalidValueException(
                    detail=f"members of type {member_type!r} are not supported: only Users"
                )
            member_id = next((v for k, v in entry.items() if k.lower() == "value"), None)
        else:
            member_id = getattr(entry, "value", None)
        if not isinstance(member_id, str) or not member_id:
            raise InvalidValueException(detail="Each member needs a 'value', the id of a User")
        ids.append(member_id)
    return tuple(ids)


def apply_membership(current: set[str], operations: list[MembershipOp]) -> set[str]:
    """The member ids after the membership operations, in order."""
    members = set(current)
    for operation in operations:
        if operation.action is MembershipAction.add:
            members |= set(operation.ids)
        elif operation.action is MembershipAction.remove:
            members -= set(operation.ids)
        elif operation.action is MembershipAction.remove_all:
            members = set()
        else:
            members = set(operation.ids)
    return members
