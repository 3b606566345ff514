"""A 2xx is not proof: is a write's effect in the app?

From the answer when it carries the resource (RFC 7644 §3.5.1/§3.5.2: 200 with the resource),
otherwise from a read: one ``GET /Groups/{id}?attributes=members`` confirms every member change
of that group in the call, ``GET /Users/{id}`` a user update, enable or disable.
An attribute the app never returns (it does not keep it) cannot be confirmed and is not held
against the write; one it returns with the old value is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provisioner.targets.contract import AccountSpec
from provisioner.targets.scim import mapping
from provisioner.targets.scim.config import ENTERPRISE
from provisioner.targets.scim.writes import seg

if TYPE_CHECKING:
    from provisioner.targets.scim.connector import ScimConnector


def _get(body: dict[str, Any], key: str) -> Any:
    """SCIM attribute names are case-insensitive (RFC 7643 §2.1)."""
    if key in body:
        return body[key]
    low = key.lower()
    for k, v in body.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return None


def member_ids(body: Any) -> set[str] | None:
    """Member ids of a Group resource, or None when the body is not one (nothing to tell)."""
    if not isinstance(body, dict) or not body.get("id"):
        return None
    members = _get(body, "members")
    if members is None:
        return None
    return {str(m.get("value")) for m in members if isinstance(m, dict) and m.get("value")}


def group_members_read(body: Any) -> set[str]:
    """Member ids from a read of the group: an empty group has no ``members`` at all (§2.5)."""
    found = member_ids(body)
    return found if found is not None else set()


def member_effect(members: set[str], action: str, uid: str) -> bool:
    return (uid in members) if action == "add" else (uid not in members)


def held(body: dict[str, Any], attr: str) -> Any:
    """The value the app holds for a mapped attribute (``name.givenName``, ``emails.work``,
    ``enterprise.x``), or None when it returns none."""
    if attr == "emails.work":
        emails = _get(body, "emails")
        if not isinstance(emails, list):
            return None
        return [e.get("value") for e in emails if isinstance(e, dict) and str(e.get("type") or "").lower() == "work"]
    if attr.startswith("name."):
        name = _get(body, "name")
        return _get(name, attr.removeprefix("name.")) if isinstance(name, dict) else None
    if attr.startswith("enterprise."):
        ext = _get(body, ENTERPRISE)
        if not isinstance(ext, dict):
            return None
        value = _get(ext, attr.removeprefix("enterprise."))
        if attr == "enterprise.manager":
            return _get(value, "value") if isinstance(value, dict) else value
        return value
    return _get(body, attr)


def _same(have: Any, want: str) -> bool:
    norm = want.strip().casefold()
    if isinstance(have, list):
        return any(isinstance(h, str) and h.strip().casefold() == norm for h in have)
    return isinstance(have, (str, int)) and str(have).strip().casefold() == norm


def user_missing(body: Any, user_mapping: dict[str, str], spec: AccountSpec | None,
                 active: bool | None) -> list[str] | None:
    """What of an update (or enable/disable) the User resource does not show; [] when all of
    it is there, None when the body is not a User resource (read it)."""
    if not isinstance(body, dict) or not body.get("id"):
        return None
    missing: list[str] = []
    if spec is not None:
        for attr, value in mapping.render(user_mapping, spec).items():
            have = held(body, attr)
            if have is None or have == []:
                continue  # the app does not keep (or return) it: nothing to confirm
            if not _same(have, value):
                missing.append(attr)
    if active is not None:
        have = _get(body, "active")
        if isinstance(have, str):
            have = have.strip().lower() == "true"  # some apps answer "True"/"False"
        if have is not active:
            missing.append("active")
    return missing


async def read_group(conn: ScimConnector, group_id: str) -> dict[str, Any]:
    """The group's members (``group_members_read``); raises ``TargetError`` when the group
    cannot be read (the write stays unconfirmed)."""
    return await conn.read(f"Groups/{seg(group_id)}", {"attributes": "members"})


async def read_user(conn: ScimConnector, remote_id: str) -> dict[str, Any]:
    return await conn.read(f"Users/{seg(remote_id)}")
