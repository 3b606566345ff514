"""Use cases of ``/Users`` (RFC 7644 §3.3–§3.6) over identities.

Users created through SCIM get ``source="scim"`` and are writable; users from HR keep their
HR-owned attributes (:data:`~provisioner.scim.hr_owned.HR_OWNED_CORE`,
:data:`~provisioner.scim.hr_owned.HR_OWNED_ENTERPRISE`) readOnly: a write that changes one is
``400 mutability``. Every change bumps ``version`` (the ETag) and calls the identity-change
hook. Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from scim2_models import (
    Context,
    MutabilityException,
    NotFoundException,
    ResponseParameters,
    UniquenessException,
)
from sqlalchemy.exc import IntegrityError

from provisioner.clock import utcnow
from provisioner.identities.models import Identity
from provisioner.scim import repository as repo
from provisioner.scim.context import ScimContext, parse_resource
from provisioner.scim.filters import compile_filter
from provisioner.scim.hot import render
from provisioner.scim.hr_owned import hr_owned_changes, keep_hr_owned, keep_hr_user_name_case
from provisioner.scim.lengths import check_user_values
from provisioner.scim.patch import apply_patch, parse_patch
from provisioner.scim.protocol import Conditions
from provisioner.scim.query import ListQuery, Page, order_by, wants
from provisioner.scim.schemas import (
    ENTERPRISE_SCHEMA,
    Ref,
    UserResource,
    UserWrite,
    etag,
    split_user,
    stored_manager_id,
    user_from_identity,
    with_active_unassigned,
    with_deletion_record,
    with_stored_attributes,
)

ACTIVE_STATE = "active"
INACTIVE_STATE = "terminated"
"""State of a SCIM-sourced identity from ``active`` (Okta deactivates with active=false)."""


class UserService:
    """``/Users`` use cases for one request."""

    def __init__(self, ctx: ScimContext) -> None:
        self.ctx = ctx
        self.session = ctx.session

    # -- reads -------------------------------------------------------------------------------

    def get(self, user_id: str, parameters: ResponseParameters[Any] | None = None) -> UserResource:
        """GET /Users/{id} (RFC 7644 §3.4.1)."""
        identity = repo.get_user(self.session, user_id)
        if identity is None:
            raise NotFoundException(detail=f"User {user_id} not found")
        return self.render([identity], groups=wants(parameters, "groups"))[0]

    def get_body(self, user_id: str) -> tuple[Identity, dict[str, Any]]:
        """GET /Users/{id} without ``attributes``/``excludedAttributes``: the identity and the
        response body, rendered by :mod:`provisioner.scim.hot.render` when it can."""
        identity = repo.get_user(self.session, user_id)
        if identity is None:
            raise NotFoundException(detail=f"User {user_id} not found")
        return identity, self.bodies([identity], Context.RESOURCE_QUERY_RESPONSE)[0]

    def search(self, query: ListQuery) -> Page:
        """GET /Users and POST /Users/.search (RFC 7644 §3.4.2, §3.4.3)."""
        rows, total = self._search_rows(query)
        resources = self.render(rows, groups=wants(query.response, "groups"))
        return Page(total=total, start_index=query.start_index, resources=resources)

    def search_bodies(self, query: ListQuery) -> Page:
        """:meth:`search` for a query without ``attributes``/``excludedAttributes``: the page
        holds response bodies, rendered by :mod:`provisioner.scim.hot.render` when it can."""
        rows, total = self._search_rows(query)
        resources = self.bodies(rows, Context.SEARCH_RESPONSE)
        return Page(total=total, start_index=query.start_index, resources=resources)

    def _search_rows(self, query: ListQuery) -> tuple[list[Identity], int]:
        condition = compile_filter(repo.USER_FILTERS, query.filter, self.ctx.dialect)
        order = order_by(repo.USER_FILTERS, query)
        rows = repo.search_users(self.session, condition, order, query.start_index - 1, query.count)
        if query.start_index == 1 and len(rows) < query.count:
            total = len(rows)  # the whole result is on this page: no COUNT needed
        else:
            total = repo.count_users(self.session, condition)
        return rows, total

    # -- writes ------------------------------------------------------------------------------

    def create(self, payload: Any) -> UserResource:
        """POST /Users (RFC 7644 §3.3): a new identity with ``source="scim"``."""
        user = parse_resource(UserResource, payload, Context.RESOURCE_CREATION_REQUEST)
        write = split_user(user)
        _check_lengths(write, hr=False)
        self._check_unique(write, None)
        now = utcnow()
        identity = Identity(
            id=str(uuid.uuid4()),
            source="scim",
            state=ACTIVE_STATE if write.columns["active"] is not False else INACTIVE_STATE,
            active=write.columns["active"] is not False,
            version=1,
            created_at=now,
            updated_at=now,
            extra={},
        )
        self._write(identity, write, hr=False)
        repo.add_identity(self.session, identity)
        self._flush()
        self.ctx.identity_changed(identity.id)
        return self.render([identity], groups=False)[0]  # a new user is in no group

    def replace(self, user_id: str, payload: Any, conditions: Conditions) -> UserResource:
        """PUT /Users/{id} (RFC 7644 §3.5.1); Okta sends the full user with ``id`` and ``meta``."""
        identity, current = self._current(user_id, conditions, "PUT")
        replacement = parse_resource(UserResource, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        replacement.replace(current)  # readOnly copied, immutable checked (MutabilityException)
        hr = identity.source == "hr"
        if hr:
            keep_hr_owned(current, replacement)
        return self._save(identity, current, replacement, hr)

    def patch(self, user_id: str, payload: Any, conditions: Conditions) -> UserResource:
        """PATCH /Users/{id} (RFC 7644 §3.5.2), with the Entra ID and Okta shapes."""
        patch = parse_patch(UserResource, payload)
        identity, current = self._current(user_id, conditions, "PATCH")
        updated = current.model_copy(deep=True)
        if not apply_patch(updated, patch):
            return current
        return self._save(identity, current, updated, identity.source == "hr")

    def delete(self, user_id: str, conditions: Conditions) -> None:
        """DELETE /Users/{id} (RFC 7644 §3.6).

        The identity stays (its accounts in targets must be revoked by the planner, and its
        history kept) but is no longer a SCIM resource: it is deactivated, its userName and
        employee number are released (recorded in ``extra``), it leaves SCIM groups, and every
        later operation on it is 404.
        """
        identity = repo.get_user(self.session, user_id, for_update=True)
        if identity is None:
            raise NotFoundException(detail=f"User {user_id} not found")
        conditions.check(etag(identity.version), "DELETE")
        if identity.source == "hr":
            raise MutabilityException(
                detail="This user comes from HR; it leaves through an HR termination event"
            )
        now = utcnow()
        repo.bump_groups(self.session, repo.leave_scim_groups(self.session, identity.id), now)
        identity.extra = with_deletion_record(identity, now)
        identity.user_name = None
        identity.employee_id = None
        identity.active = False
        identity.state = INACTIVE_STATE
        identity.version += 1
        identity.updated_at = now
        self._flush()
        self.ctx.identity_changed(identity.id)

    # -- helpers -----------------------------------------------------------------------------

    def _current(
        self, user_id: str, conditions: Conditions, method: str
    ) -> tuple[Identity, UserResource]:
        identity = repo.get_user(self.session, user_id, for_update=True)
        if identity is None:
            raise NotFoundException(detail=f"User {user_id} not found")
        conditions.check(etag(identity.version), method)
        return identity, self.render([identity], groups=True)[0]

    def _save(
        self, identity: Identity, current: UserResource, updated: UserResource, hr: bool
    ) -> UserResource:
        if hr:
            keep_hr_user_name_case(current, updated)
            changed = hr_owned_changes(current, updated)
            if changed:
                raise MutabilityException(
                    attribute=changed[0],
                    detail=f"'{changed[0]}' is owned by HR for this user and is readOnly "
                    f"(changed: {', '.join(changed)})",
                )
        if _comparable(current) == _comparable(updated):
            return current  # nothing changed: same version, same lastModified
        write = split_user(updated)
        _check_lengths(write, hr=hr)
        if not hr:
            self._check_unique(write, identity.id)
        self._write(identity, write, hr=hr)
        identity.version += 1
        identity.updated_at = utcnow()
        self._flush()
        self.ctx.identity_changed(identity.id)
        return self.render([identity], groups=True)[0]

    def _write(self, identity: Identity, write: UserWrite, *, hr: bool) -> None:
        attributes = dict(write.attributes)
        if hr:
            # HR-owned attributes live in HR's columns; only the others are kept.
            for key in ("name", "emails"):
                attributes.pop(key, None)
            enterprise = dict(attributes.pop(ENTERPRISE_SCHEMA, None) or {})
            enterprise.pop("manager", None)
            if enterprise:
                attributes[ENTERPRISE_SCHEMA] = enterprise
        else:
            columns = dict(write.columns)
            active = columns.pop("active")
            for column, value in columns.items():
                setattr(identity, column, value)
            if active is not None and active != identity.active:
                identity.active = active
                identity.state = ACTIVE_STATE if active else INACTIVE_STATE
            identity.manager_employee_id = self._manager_employee_id(write.manager_id)
        identity.external_id = write.external_id
        extra = with_stored_attributes(identity, attributes)
        if not hr:
            extra = with_active_unassigned(extra, write.columns["active"] is None)
        identity.extra = extra

    def _manager_employee_id(self, manager_id: str | None) -> str | None:
        """enterprise manager.value is the manager's SCIM id (RFC 7643 §4.3); HR keys managers
        by employee number."""
        if not manager_id:
            return None
        manager = repo.users_by_ids(self.session, [manager_id]).get(manager_id)
        return manager.employee_id if manager is not None else None

    def _check_unique(self, write: UserWrite, own_id: str | None) -> None:
        """409 uniqueness (RFC 7644 §3.3, §3.12) for userName (case-insensitively) and
        employeeNumber."""
        user_name = write.columns.get("user_name")
        if user_name:
            owner = repo.user_name_owner(self.session, user_name)
            if owner is not None and owner != own_id:
                raise UniquenessException(detail=f"userName {user_name!r} is already taken")
        employee_id = write.columns.get("employee_id")
        if employee_id:
            owner = repo.employee_id_owner(self.session, employee_id)
            if owner is not None and owner != own_id:
                raise UniquenessException(detail=f"employeeNumber {employee_id!r} is already taken")

    def _flush(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as exc:  # a concurrent writer took the same unique value
            raise UniquenessException(detail="userName or employeeNumber is already taken") from exc

    def render(self, identities: Sequence[Identity], *, groups: bool) -> list[UserResource]:
        """SCIM Users for identities, with their groups and managers looked up in bulk."""
        if not identities:
            return []
        ids = [identity.id for identity in identities]
        memberships = repo.groups_of_users(self.session, ids) if groups else {}
        managers = self._managers(identities)
        return [
            user_from_identity(
                identity,
                base_url=self.ctx.base_url,
                groups=memberships.get(identity.id, []) if groups else None,
                manager=managers.get(identity.id),
            )
            for identity in identities
        ]

    def bodies(self, identities: Sequence[Identity], scim_ctx: Context) -> list[dict[str, Any]]:
        """Response bodies of Users with every attribute (no ``attributes`` parameters):
        built directly for column-only identities, through the models for the others."""
        if not identities:
            return []
        memberships = repo.groups_of_users(self.session, [i.id for i in identities])
        managers = self._managers(identities)
        base = self.ctx.base_url
        out: list[dict[str, Any]] = []
        for identity in identities:
            groups = memberships.get(identity.id, [])
            manager = managers.get(identity.id)
            body = render.user_dict(identity, base_url=base, groups=groups, manager=manager)
            if body is None:
                user = user_from_identity(identity, base_url=base, groups=groups, manager=manager)
                body = user.model_dump(scim_ctx=scim_ctx)
            out.append(body)
        return out

    def _managers(self, identities: Sequence[Identity]) -> dict[str, Ref]:
        """HR users: by ``manager_employee_id``; SCIM users: by the manager id they wrote."""
        hr_keys = {
            i.id: i.manager_employee_id
            for i in identities
            if i.source == "hr" and i.manager_employee_id
        }
        scim_keys = {
            i.id: manager_id
            for i in identities
            if i.source != "hr" and (manager_id := stored_manager_id(i))
        }
        by_employee = repo.users_by_employee_ids(self.session, hr_keys.values())
        by_id = repo.users_by_ids(self.session, scim_keys.values()) if scim_keys else {}
        found: dict[str, Ref] = {}
        for identity_id, employee_id in hr_keys.items():
            if employee_id in by_employee:
                found[identity_id] = by_employee[employee_id]
        for identity_id, manager_id in scim_keys.items():
            manager = by_id.get(manager_id)
            found[identity_id] = Ref(manager_id, manager.display_name if manager else None)
        return found


def _check_lengths(write: UserWrite, *, hr: bool) -> None:
    """400 invalidValue for a value longer than its column (before any query uses it). Of an
    HR user only ``externalId`` is written (the rest is HR's, checked as unchanged)."""
    values = {} if hr else dict(write.columns)
    values["external_id"] = write.external_id
    check_user_values(values)


def _comparable(user: UserResource) -> Any:
    """What a write compares to tell a change from a repeat: the manager by its id only, since
    ``$ref`` and ``displayName`` are the server's (Okta's PUT echoes ``{value, displayName}``)."""
    data = user.model_dump()
    data.pop("meta", None)
    data.pop("password", None)
    enterprise = data.get(ENTERPRISE_SCHEMA)
    if isinstance(enterprise, dict) and isinstance(enterprise.get("manager"), dict):
        enterprise["manager"] = enterprise["manager"].get("value")
    return _unordered(data)


def _unordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _unordered(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((_unordered(item) for item in value), key=repr)
    return value
