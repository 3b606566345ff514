"""The in-memory directory: users, groups, memberships, managers, session revocations, and the
change log that delta queries read.

Entra ID rules the directory enforces (each cited where it applies): unique userPrincipalName and
proxy addresses, all-or-nothing membership additions, no direct edits of dynamic groups, and
memberships removed with a deleted user. Lookups by id, userPrincipalName, mail, employeeId and
group displayName are indexed, as are memberships in both directions, so nothing scans the tenant.
String matching is case-insensitive, as it is in the directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioner.clock import utcnow
from provisioner.sandbox.graph import user_properties
from provisioner.sandbox.graph.errors import (
    ALREADY_MEMBER_MESSAGE,
    bad_request,
    duplicate_value,
    invalid_value,
    not_found,
)
from provisioner.sandbox.graph.messages import JsonObject
from provisioner.sandbox.graph.schema import DYNAMIC_MEMBERSHIP, GROUP, USER


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log. An entry's 1-based position is its sequence number, which
    delta tokens record; a deleted object is the one a change names that no longer exists.
    """

    entity_set: str  # "users" or "groups"
    object_id: str
    properties: frozenset[str] = frozenset()  # properties set or changed (all of them on create)
    created: bool = False
    member_id: str | None = None  # a membership change of a group
    member_type: str = ""  # @odata.type of that member
    member_added: bool = False


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(value: str) -> str:
    return value.casefold()


class Directory:
    """The tenant's users and groups. Methods raise :class:`GraphError` with Entra's answers."""

    def __init__(self) -> None:
        self.users: dict[str, JsonObject] = {}
        self.groups: dict[str, JsonObject] = {}
        self.changes: list[Change] = []
        self._by_upn: dict[str, str] = {}
        self._by_mail: dict[str, str] = {}
        self._by_employee_id: dict[str, set[str]] = {}
        self._groups_by_name: dict[str, set[str]] = {}
        # Ordered sets (dict keys) so paging through members is stable.
        self._members: dict[str, dict[str, None]] = {}
        self._member_of: dict[str, dict[str, None]] = {}
        self._managers: dict[str, str] = {}  # user id -> manager id
        self._reports: dict[str, set[str]] = {}  # manager id -> user ids
        self._sessions_revoked: dict[str, datetime] = {}

    # ---- lookups -------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """The sequence number of the latest change (0 when nothing happened yet)."""
        return len(self.changes)

    def get_user(self, key: str) -> JsonObject | None:
        """A user by object id or, as Graph allows in ``/users/{id | userPrincipalName}``, UPN."""
        user = self.users.get(key)
        if user is None:
            user_id = self._by_upn.get(_key(key))
            user = self.users.get(user_id) if user_id else None
        return user

    def require_user(self, key: str) -> JsonObject:
        user = self.get_user(key)
        if user is None:
            raise not_found(key)
        return user

    def require_group(self, group_id: str) -> JsonObject:
        group = self.groups.get(group_id)
        if group is None:
            raise not_found(group_id)
        return group

    def object_type(self, object_id: str) -> str | None:
        """The ``@odata.type`` of a directory object, or None if there is no such object."""
        if object_id in self.users:
            return USER.odata_type
        if object_id in self.groups:
            return GROUP.odata_type
        return None

    def indexed(self, entity_set: str, prop: str, value: Any) -> Collection[str] | None:
        """Ids whose ``prop`` equals ``value`` from an index, or None when ``prop`` isn't indexed."""
        objects = self.users if entity_set == USER.entity_set else self.groups
        if prop == "id":
            return (value,) if isinstance(value, str) and value in objects else ()
        if not isinstance(value, str):
            return None
        key = _key(value)
        if entity_set == USER.entity_set:
            if prop == "userPrincipalName":
                found = self._by_upn.get(key)
                return (found,) if found else ()
            if prop == "mail":
                found = self._by_mail.get(key)
                return (found,) if found else ()
            if prop == "employeeId":
                return self._by_employee_id.get(key, ())
        elif prop == "displayName":
            return self._groups_by_name.get(key, ())
        return None

    def member_ids(self, group_id: str) -> Collection[str]:
        return self._members.get(group_id, {}).keys()

    def groups_of(self, object_id: str) -> Collection[str]:
        return self._member_of.get(object_id, {}).keys()

    def manager_of(self, user_id: str) -> str | None:
        return self._managers.get(user_id)

    def sessions_revoked_at(self, user_id: str) -> datetime | None:
        return self._sessions_revoked.get(user_id)

    # ---- users ---------------------------------------------------------------------------

    def create_user(self, body: JsonObject, *, user_id: str | None = None) -> JsonObject:
        """Add a user from a POST /users body already checked against the user schema."""
        body = user_properties.normalised(body)
        upn = body["userPrincipalName"]
        self._check_upn(upn, None)
        mail = body.get("mail")
        if mail:
            self._check_mail(mail, None)
        now = _iso(utcnow())
        user: JsonObject = dict.fromkeys(USER.readable)
        user.update({k: v for k, v in body.items() if k in USER.readable})
        user.update(
            id=user_id or str(uuid.uuid4()),
            businessPhones=body.get("businessPhones") or [],
            createdDateTime=now,
            signInSessionsValidFromDateTime=now,
            proxyAddresses=[f"SMTP:{mail}"] if mail else [],
        )
        if user["id"] in self.users or user["id"] in self.groups:
            raise bad_request(f"Object with id '{user['id']}' already exists.")
        self.users[user["id"]] = user
        self._index_user(user)
        self._log(USER.entity_set, user["id"], properties=frozenset(body) & USER.readable, created=True)
        return user

    def update_user(self, user_id: str, body: JsonObject) -> None:
        """Apply a PATCH /users/{id} body already checked against the user schema."""
        body = user_properties.normalised(body)
        user = self.require_user(user_id)
        if "userPrincipalName" in body:
            self._check_upn(body["userPrincipalName"], user["id"])
        if body.get("mail"):
            self._check_mail(body["mail"], user["id"])
        changed = {name for name, value in body.items() if name in USER.readable and user.get(name) != value}
        if not changed:
            return
        self._unindex_user(user)
        for name in changed:
            user[name] = body[name]
        if "mail" in changed:
            user["proxyAddresses"] = [f"SMTP:{user['mail']}"] if user["mail"] else []
        self._index_user(user)
        self._log(USER.entity_set, user["id"], properties=frozenset(changed))

    def delete_user(self, user_id: str) -> None:
        """Delete a user; Entra drops its memberships and manager links with it."""
        user = self.require_user(user_id)
        object_id = user["id"]
        for group_id in list(self.groups_of(object_id)):
            self._unlink(group_id, object_id, USER.odata_type)
        manager_id = self._managers.pop(object_id, None)
        if manager_id is not None:
            self._reports[manager_id].discard(object_id)
        for report_id in self._reports.pop(object_id, set()):
            del self._managers[report_id]
            self._log(USER.entity_set, report_id, properties=frozenset({"manager"}))
        self._unindex_user(user)
        del self.users[object_id]
        self._log(USER.entity_set, object_id)

    def revoke_sessions(self, user_id: str) -> datetime:
        """Invalidate the user's refresh and session tokens from now on (revokeSignInSessions).

        Graph records the moment in ``signInSessionsValidFromDateTime``.
        """
        user = self.require_user(user_id)
        moment = utcnow()
        self._sessions_revoked[user["id"]] = moment
        user["signInSessionsValidFromDateTime"] = _iso(moment)
        self._log(USER.entity_set, user["id"], properties=frozenset({"signInSessionsValidFromDateTime"}))
        return moment

    def set_manager(self, user_id: str, manager_id: str) -> None:
        user = self.require_user(user_id)
        manager = self.require_user(manager_id)
        if manager["id"] == user["id"]:
            raise bad_request("A user can't be their own manager.")
        previous = self._managers.get(user["id"])
        if previous is not None:
            self._reports[previous].discard(user["id"])
        self._managers[user["id"]] = manager["id"]
        self._reports.setdefault(manager["id"], set()).add(user["id"])
        self._log(USER.entity_set, user["id"], properties=frozenset({"manager"}))

    def remove_manager(self, user_id: str) -> None:
        user = self.require_user(user_id)
        manager_id = self._managers.pop(user["id"], None)
        if manager_id is None:
            raise not_found(f"{user['id']}/manager")
        self._reports[manager_id].discard(user["id"])
        self._log(USER.entity_set, user["id"], properties=frozenset({"manager"}))

    def _check_upn(self, upn: Any, owner_id: str | None) -> None:
        if not isinstance(upn, str):
            raise invalid_value("userPrincipalName", USER.resource)
        local, at, domain = upn.partition("@")
        if not (local and at and domain) or "@" in domain:
            raise invalid_value("userPrincipalName", USER.resource)
        holder = self._by_upn.get(_key(upn))
        if holder is not None and holder != owner_id:
            raise duplicate_value("userPrincipalName")

    def _check_mail(self, mail: str, owner_id: str | None) -> None:
        # Entra derives proxyAddresses from mail; a taken address collides on proxyAddresses.
        holder = self._by_mail.get(_key(mail))
        if holder is not None and holder != owner_id:
            raise duplicate_value("proxyAddresses")

    def _index_user(self, user: JsonObject) -> None:
        self._by_upn[_key(user["userPrincipalName"])] = user["id"]
        if user.get("mail"):
            self._by_mail[_key(user["mail"])] = user["id"]
        if user.get("employeeId"):
            self._by_employee_id.setdefault(_key(user["employeeId"]), set()).add(user["id"])

    def _unindex_user(self, user: JsonObject) -> None:
        self._by_upn.pop(_key(user["userPrincipalName"]), None)
        if user.get("mail"):
            self._by_mail.pop(_key(user["mail"]), None)
        if user.get("employeeId"):
            holders = self._by_employee_id.get(_key(user["employeeId"]))
            if holders is not None:
                holders.discard(user["id"])
                if not holders:
                    del self._by_employee_id[_key(user["employeeId"])]

    # ---- groups --------------------------------------------------------------------------

    def create_group(
        self, body: JsonObject, *, group_id: str | None = None, member_ids: Iterable[str] = ()
    ) -> JsonObject:
        """Add a group from a POST /groups body already checked against the group schema."""
        new_id = group_id or str(uuid.uuid4())
        if new_id in self.groups or new_id in self.users:
            raise bad_request(f"Object with id '{new_id}' already exists.")
        group: JsonObject = dict.fromkeys(GROUP.readable)
        group.update({k: v for k, v in body.items() if k in GROUP.readable})
        group.update(id=new_id, groupTypes=body.get("groupTypes") or [], createdDateTime=_iso(utcnow()))
        members = list(member_ids)
        self._check_new_members(group, members)
        self.groups[new_id] = group
        self._groups_by_name.setdefault(_key(group["displayName"]), set()).add(new_id)
        self._log(GROUP.entity_set, new_id, properties=frozenset(body) & GROUP.readable, created=True)
        for member_id in members:
            self._link(new_id, member_id)
        return group

    def update_group(self, group_id: str, body: JsonObject, *, add_member_ids: Iterable[str] = ()) -> None:
        """Apply a PATCH /groups/{id}: properties and ``members@odata.bind``, all or nothing."""
        group = self.require_group(group_id)
        members = list(add_member_ids)
        self._check_new_members(group, members)
        changed = {
            name for name, value in body.items() if name in GROUP.readable and group.get(name) != value
        }
        if changed:
            if "displayName" in changed:
                self._groups_by_name[_key(group["displayName"])].discard(group_id)
                self._groups_by_name.setdefault(_key(body["displayName"]), set()).add(group_id)
            for name in changed:
                group[name] = body[name]
            self._log(GROUP.entity_set, group_id, properties=frozenset(changed))
        for member_id in members:
            self._link(group_id, member_id)

    def add_members(self, group_id: str, member_ids: Iterable[str]) -> None:
        """Add members, all or nothing (POST members/$ref, PATCH members@odata.bind)."""
        self.update_group(group_id, {}, add_member_ids=member_ids)

    def remove_member(self, group_id: str, member_id: str) -> None:
        """DELETE /groups/{id}/members/{memberId}/$ref: 404 when it isn't a member."""
        group = self.require_group(group_id)
        self._refuse_if_dynamic(group)
        member_type = self.object_type(member_id)
        if member_type is None or member_id not in self._members.get(group_id, {}):
            raise not_found(member_id)
        self._unlink(group_id, member_id, member_type)

    @staticmethod
    def _refuse_if_dynamic(group: JsonObject) -> None:
        if DYNAMIC_MEMBERSHIP in (group.get("groupTypes") or ()):
            # Entra refuses the edit with 400; the wording here is the sandbox's own.
            raise bad_request(
                "Members of a group with dynamic membership can't be added or removed directly: "
                "its membership rule manages them."
            )

    def _check_new_members(self, group: JsonObject, member_ids: list[str]) -> None:
        if not member_ids:
            return
        self._refuse_if_dynamic(group)
        current = self._members.get(group["id"], {})
        seen: set[str] = set()
        for member_id in member_ids:
            if self.object_type(member_id) is None:
                raise not_found(member_id)
            if member_id == group["id"]:
                raise bad_request("A group can't be a member of itself.")
            if member_id in current or member_id in seen:
                raise bad_request(ALREADY_MEMBER_MESSAGE)
            seen.add(member_id)

    def _link(self, group_id: str, member_id: str) -> None:
        self._members.setdefault(group_id, {})[member_id] = None
        self._member_of.setdefault(member_id, {})[group_id] = None
        member_type = USER.odata_type if member_id in self.users else GROUP.odata_type
        self._log(GROUP.entity_set, group_id, member_id=member_id, member_type=member_type, member_added=True)

    def _unlink(self, group_id: str, member_id: str, member_type: str) -> None:
        del self._members[group_id][member_id]
        del self._member_of[member_id][group_id]
        self._log(GROUP.entity_set, group_id, member_id=member_id, member_type=member_type)

    # ---- change log ----------------------------------------------------------------------

    def _log(
        self,
        entity_set: str,
        object_id: str,
        *,
        properties: frozenset[str] = frozenset(),
        created: bool = False,
        member_id: str | None = None,
        member_type: str = "",
        member_added: bool = False,
    ) -> None:
        self.changes.append(
            Change(entity_set, object_id, properties, created, member_id, member_type, member_added)
        )
