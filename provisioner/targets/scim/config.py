"""A SCIM 2.0 app as a target: ``targets/NAME.yaml`` with ``kind: scim``.

Example (``examples/targets/scim-app.yaml`` has every option)::

    kind: scim
    name: wiki
    base_url: https://wiki.example.com/scim/v2
    auth: {method: bearer, token: {env: WIKI_SCIM_TOKEN}}
    managed_groups: [{name: Wiki Editors}]
    deprovision: {mode: disable_then_delete, delete_after_days: 30}
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from provisioner.targets.declarations import (
    Deprovision,
    HoldCause,
    HoldLimit,
    ManagedGroup,
    SecretRef,
    Throttle,
    require_for_method,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# The person's attributes a mapping template may use (``AccountSpec`` fields).
TEMPLATE_FIELDS = frozenset({
    "employee_id", "login", "display_name", "given_name", "family_name", "email", "department",
    "job_title", "office_location", "cost_center", "employee_type", "manager_remote_id",
})

# SCIM User attributes a mapping may set (RFC 7643 §4.1 core, §4.3 enterprise extension).
# ``emails.work`` is the work e-mail (``emails[type eq "work"].value``).
CORE_ATTRIBUTES = frozenset({
    "userName", "externalId", "displayName", "nickName", "title", "userType", "preferredLanguage",
    "locale", "timezone", "profileUrl", "name.givenName", "name.familyName", "name.formatted",
    "name.middleName", "name.honorificPrefix", "name.honorificSuffix", "emails.work",
})
ENTERPRISE_ATTRIBUTES = frozenset({
    "employeeNumber", "costCenter", "organization", "division", "department", "manager",
})

DEFAULT_MAPPING: dict[str, str] = {
    "userName": "{login}",
    "externalId": "{employee_id}",
    "displayName": "{display_name}",
    "name.givenName": "{given_name}",
    "name.familyName": "{family_name}",
    "emails.work": "{email}",
    "title": "{job_title}",
    "userType": "{employee_type}",
    "enterprise.employeeNumber": "{employee_id}",
    "enterprise.department": "{department}",
    "enterprise.costCenter": "{cost_center}",
    "enterprise.manager": "{manager_remote_id}",
}


def normalise_attribute(name: str) -> str:
    """``enterprise.x`` and the full URN form ``urn:...:enterprise:2.0:User:x`` are the same."""
    if name.startswith(ENTERPRISE + ":"):
        return "enterprise." + name[len(ENTERPRISE) + 1:]
    return name


class ScimAuth(BaseModel):
    """How the service authenticates to the app.

    ``bearer``: a static token (RFC 6750). ``oauth2_client_credentials``: a token from
    ``token_url`` (RFC 6749 §4.4), cached until shortly before it expires. ``none``: for
    local test servers only.
    """

    model_config = ConfigDict(extra="forbid")
    method: Literal["bearer", "oauth2_client_credentials", "none"]
    token: SecretRef | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> ScimAuth:
        require_for_method(self, self.method, {
            "bearer": ("token",), "oauth2_client_credentials": ("token_url", "client_id", "client_secret"),
            "none": ()})
        return self


class Compatibility(BaseModel):
    """Where a server differs from RFC 7644. ``auto`` follows its ServiceProviderConfig."""

    model_config = ConfigDict(extra="forbid")
    bulk: Literal["auto", "never"] = "auto"
    # never: GET + PUT for users; group memberships follow ``group_patch`` and the server alone.
    # Whatever is set here, a form the app turns out not to do is learned per operation and the
    # next one used (targets/scim/forms.py; shown by `provisioner targets check`).
    patch: Literal["auto", "never"] = "auto"
    # never: a server that refuses PATCH on /Groups although it announces PATCH: memberships
    # are changed by GET + PUT of the whole group (with If-Match when ETags are offered).
    group_patch: Literal["auto", "never"] = "auto"
    etag: Literal["auto", "never"] = "auto"
    max_members_per_patch: int = Field(default=500, ge=1)
    # Lookups for match-before-create, tried in this order (RFC 7644 §3.4.2.2 filters).
    match_attributes: list[Literal["externalId", "userName"]] = Field(
        default_factory=lambda: ["externalId", "userName"])
    lookups_per_request: int = Field(default=50, ge=1)  # terms OR-ed in one filter
    # Member removal as ``members[value eq "id"]`` (RFC 7644 §3.5.2.2), or as Entra ID sends
    # it: path ``members`` with a value list (some servers only understand that one).
    remove_member_style: Literal["filter", "value_list"] = "filter"
    bulk_fail_on_errors: int | None = None  # None: process every operation (RFC 7644 §3.7.3)


class ScimTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["scim"]
    name: str
    base_url: str
    auth: ScimAuth
    mapping: dict[str, str | None] = Field(default_factory=dict)  # merged over DEFAULT_MAPPING
    managed_groups: list[ManagedGroup] = Field(default_factory=list)
    # Accounts in a managed group the service has no link for: removed by `reconcile --fix`
    # (managed groups are the service's), or only reported.
    unknown_members: Literal["remove", "report"] = "remove"
    create_missing_groups: bool = False
    deprovision: Deprovision = Field(default_factory=Deprovision)
    holds: dict[HoldCause, HoldLimit] = Field(default_factory=dict)  # mass-change thresholds
    compatibility: Compatibility = Field(default_factory=Compatibility)
    throttle: Throttle = Field(default_factory=lambda: Throttle(writes_per_second=0, burst=100, concurrency=4))
    timeout_seconds: float = 30.0

    # SCIM has no sign-in sessions to end; the planner asks every target.
    revoke_sessions: Literal[False] = False

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL (the SCIM root, e.g. .../scim/v2)")
        return value.rstrip("/")

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for raw, template in value.items():
            name = normalise_attribute(raw)
            attr = name.removeprefix("enterprise.")
            known = ENTERPRISE_ATTRIBUTES if name.startswith("enterprise.") else CORE_ATTRIBUTES
            if attr not in known:
                raise ValueError(f"unknown SCIM attribute {raw!r}; known: "
                                 f"{', '.join(sorted(CORE_ATTRIBUTES))}, enterprise.<{', '.join(sorted(ENTERPRISE_ATTRIBUTES))}>")
            if template is not None:
                fields = {f for _, f, _, _ in string.Formatter().parse(str(template)) if f}
                unknown = fields - TEMPLATE_FIELDS
                if unknown:
                    raise ValueError(f"mapping of {raw!r} uses unknown field(s) {sorted(unknown)}; "
                                     f"known: {', '.join(sorted(TEMPLATE_FIELDS))}")
            out[name] = template
        return out

    def effective_mapping(self) -> dict[str, str]:
        """The default mapping with this file's entries over it (``null`` drops one)."""
        merged = {**DEFAULT_MAPPING, **self.mapping}
        if "userName" not in merged or not merged["userName"]:
            merged["userName"] = DEFAULT_MAPPING["userName"]  # RFC 7643 §4.1.1: required
        return {k: v for k, v in merged.items() if v}

    def managed_group_names(self) -> list[str]:
        return [group.name for group in self.managed_groups]
