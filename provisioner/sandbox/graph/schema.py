"""The shapes of the two Graph entity types the sandbox stores: user and group.

Property names, the default property sets returned without ``$select`` and the required
properties on create follow the v1.0 resource pages (learn.microsoft.com/graph/api/resources/user,
.../resources/group, .../api/user-post-users, .../api/group-post-groups).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioner.sandbox.graph import user_properties
from provisioner.sandbox.graph.errors import invalid_value, unknown_property


@dataclass(frozen=True, slots=True)
class EntityType:
    """What the sandbox knows about one Graph entity type."""

    odata_type: str  # "#microsoft.graph.user"
    entity_set: str  # "users", used in @odata.context
    resource: str  # "User", used in Entra's error messages
    readable: frozenset[str]  # may be named in $select
    default_select: tuple[str, ...]  # returned when $select is absent
    writable: frozenset[str]  # may be sent in POST / PATCH bodies
    required: tuple[str, ...]  # must be sent on POST
    booleans: frozenset[str]
    string_lists: frozenset[str]
    filterable: frozenset[str]  # may be named in $filter

    def check_body(
        self, body: dict[str, Any], *, creating: bool, extra: frozenset[str] = frozenset()
    ) -> None:
        """Refuse unknown properties, wrong value types, and missing or null required ones.

        ``extra`` names annotations the caller handles itself (``members@odata.bind``).
        ``@odata.type`` is accepted when it names this type: the SDK always sends it.
        """
        for name, value in body.items():
            if name == "@odata.type":
                if value != self.odata_type:
                    raise invalid_value(name, self.resource)
                continue
            if name in extra:
                continue
            if name not in self.writable:
                raise unknown_property(name)
            if self.entity_set == "users":
                user_properties.check(name, value)  # Graph's own 400 for dates, org data, lengths
                if name in user_properties.PROPERTIES:
                    continue
            if not self._valid(name, value):
                raise invalid_value(name, self.resource)
        for name in self.required:
            # Required on create, and never nullable afterwards.
            if (creating or name in body) and body.get(name) in (None, ""):
                raise invalid_value(name, self.resource)

    def _valid(self, name: str, value: Any) -> bool:
        if name in self.booleans:
            return isinstance(value, bool)
        if name in self.string_lists:
            return isinstance(value, list) and all(isinstance(item, str) for item in value)
        if name == "passwordProfile":
            return isinstance(value, dict) and isinstance(value.get("password"), str)
        return value is None or isinstance(value, str)


_USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_USER_WRITABLE = frozenset(
    {
        "accountEnabled",
        "businessPhones",
        "companyName",
        "department",
        "displayName",
        "employeeHireDate",
        "employeeId",
        "employeeLeaveDateTime",
        "employeeOrgData",
        "employeeType",
        "givenName",
        "jobTitle",
        "mail",
        "mailNickname",
        "mobilePhone",
        "officeLocation",
        "passwordProfile",
        "preferredLanguage",
        "surname",
        "usageLocation",
        "userPrincipalName",
    }
)

USER = EntityType(
    odata_type="#microsoft.graph.user",
    entity_set="users",
    resource="User",
    # passwordProfile is write-only: Graph never returns the password.
    readable=(_USER_WRITABLE - {"passwordProfile"})
    | {"id", "createdDateTime", "proxyAddresses", "signInSessionsValidFromDateTime"},
    default_select=_USER_DEFAULT,
    writable=_USER_WRITABLE,
    required=("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"),
    booleans=frozenset({"accountEnabled"}),
    string_lists=frozenset({"businessPhones"}),
    filterable=frozenset(
        {
            "id",
            "accountEnabled",
            "companyName",
            "department",
            "displayName",
            "employeeId",
            "employeeType",
            "givenName",
            "jobTitle",
            "mail",
            "mailNickname",
            "officeLocation",
            "surname",
            "usageLocation",
            "userPrincipalName",
        }
    ),
)

_GROUP_WRITABLE = frozenset(
    {
        "description",
        "displayName",
        "groupTypes",
        "mailEnabled",
        "mailNickname",
        "membershipRule",
        "membershipRuleProcessingState",
        "securityEnabled",
        "visibility",
    }
)
_GROUP_READABLE = _GROUP_WRITABLE | {"id", "createdDateTime", "mail"}

GROUP = EntityType(
    odata_type="#microsoft.graph.group",
    entity_set="groups",
    resource="Group",
    readable=_GROUP_READABLE,
    default_select=("id", *sorted(_GROUP_READABLE - {"id"})),
    writable=_GROUP_WRITABLE,
    required=("displayName", "mailEnabled", "mailNickname", "securityEnabled"),
    booleans=frozenset({"mailEnabled", "securityEnabled"}),
    string_lists=frozenset({"groupTypes"}),
    filterable=frozenset({"id", "displayName", "mail", "mailEnabled", "mailNickname", "securityEnabled"}),
)

DYNAMIC_MEMBERSHIP = "DynamicMembership"  # the groupTypes value of a dynamic group
