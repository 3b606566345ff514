"""Use cases of ``/Groups`` (RFC 7644 §3.3–§3.6) over the service's directory groups.

Groups granted by policies (``source="policy"``) are kept in step by the planner and are
read-only through SCIM (400 mutability); groups created through SCIM (``source="scim"``) are
the clients'. Members are Users; every membership change calls the identity-change hook for the
identities added or removed, and bumps the group's version. Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from scim2_models import (
    Context,
    InvalidValueException,
    MutabilityException,
    NotFoundException,
    ResponseParameters,
    UniquenessException,
)
from sqlalchemy.exc import IntegrityError

from provisioner.clock import utcnow
from provisioner.directory.models import DirectoryGroup
from provisioner.scim import repository as repo
from provisioner.scim.context import ScimContext, parse_resource
from provisioner.scim.filters import compile_filter
from provisioner.scim.lengths import check_group_values
from provisioner.scim.patch import apply_membership, apply_patch, parse_patch, plan_group_patch
from provisioner.scim.protocol import Conditions
from provisioner.scim.query import ListQuery, Page, order_by, wants
from provisioner.scim.schemas import GroupResource, etag, group_from_row, split_group


class GroupService:
    """``/Groups`` use cases for one request."""

    def __init__(self, ctx: ScimContext) -> None:
        self.ctx = ctx
        self.session = ctx.session

    # -- reads -------------------------------------------------------------------------------

    def get(
        self, group_id: str, parameters: ResponseParameters[Any] | None = None
    ) -> GroupResource:
        """GET /Groups/{id} (RFC 7644 §3.4.1)."""
        row = repo.get_group(self.session, group_id)
        if row is None:
            raise NotFoundException(detail=f"Group {group_id} not found")
        return self.render([row], members=wants(parameters, "members"))[0]

    def search(self, query: ListQuery) -> Page:
        """GET /Groups and POST /Groups/.search; Entra ID looks groups up by displayName with
        ``excludedAttributes=members``, which skips the member query."""
        condition = compile_filter(repo.GROUP_FILTERS, query.filter, self.ctx.dialect)
        order = order_by(repo.GROUP_FILTERS, query)
        rows = repo.search_groups(
            self.session, condition, order, query.start_index - 1, query.count
        )
        if query.start_index == 1 and len(rows) < query.count:
            total = len(rows)
        else:
            total = repo.count_groups(self.session, condition)
        resources = self.render(rows, members=wants(query.response, "members"))
        return Page(total=total, start_index=query.start_index, resources=resources)

    # -- writes ------------------------------------------------------------------------------

    def create(self, payload: Any) -> GroupResource:
        """POST /Groups (RFC 7644 §3.3); Entra ID's extra ADSCIM schema is ignored."""
        group = parse_resource(GroupResource, payload, Context.RESOURCE_CREATION_REQUEST)
        write = split_group(group)
        check_group_values({"display_name": write.display_name, "external_id": write.external_id})
        self._check_name(write.display_name, None)
        member_ids = set(write.member_ids or [])
        self._check_members(member_ids)
        now = utcnow()
        row = DirectoryGroup(
            id=str(uuid.uuid4()),
            display_name=write.display_name,
            external_id=write.external_id,
            source="scim",
            version=1,
            created_at=now,
            updated_at=now,
        )
        repo.add_group(self.session, row)
        self._flush()
        repo.add_members(self.session, row.id, member_ids)
        self._flush()
        self._notify(member_ids)
        return self.render([row], members=True)[0]

    def replace(self, group_id: str, payload: Any, conditions: Conditions) -> GroupResource:
        """PUT /Groups/{id} (RFC 7644 §3.5.1): members not listed are removed."""
        row = self._writable(group_id, conditions, "PUT")
        current = self.render([row], members=True)[0]
        replacement = parse_resource(GroupResource, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        replacement.replace(current)
        write = split_group(replacement)
        old = {member.value for member in current.members or [] if member.value}
        self._save(row, write.display_name, write.external_id, old, set(write.member_ids or []))
        return self.render([row], members=True)[0]

    def patch(self, group_id: str, payload: Any, conditions: Conditions) -> DirectoryGroup:
        """PATCH /Groups/{id} (RFC 7644 §3.5.2).

        Plain membership operations (Entra ID's and Okta's) are applied to member ids without
        loading the members; anything else is applied to the full resource by scim2-models.
        Returns the row; the endpoint answers 204 unless attributes were asked for.
        """
        patch = parse_patch(GroupResource, payload)
        row = self._writable(group_id, conditions, "PATCH")
        plan = plan_group_patch(patch)
        if plan.membership is None:
            current = self.render([row], members=True)[0]
            updated = current.model_copy(deep=True)
            apply_patch(updated, patch)
            old = {m.value for m in current.members or [] if m.value}
            new = {m.value for m in updated.members or [] if m.value}
        else:
            old = repo.member_ids(self.session, row.id)
            new = apply_membership(old, plan.membership)
            updated = self.render([row], members=False)[0]
            if plan.other is not None:
                apply_patch(updated, plan.other)
        self._save(row, updated.display_name or "", updated.external_id, old, new)
        return row

    def delete(self, group_id: str, conditions: Conditions) -> None:
        """DELETE /Groups/{id} (RFC 7644 §3.6); its members' access is re-planned."""
        row = self._writable(group_id, conditions, "DELETE")
        members = repo.member_ids(self.session, row.id)
        repo.delete_group(self.session, row)
        self._flush()
        self._notify(members)

    # -- helpers -----------------------------------------------------------------------------

    def render(self, rows: Sequence[DirectoryGroup], *, members: bool) -> list[GroupResource]:
        """SCIM Groups for rows, their members looked up in one query when asked for."""
        if not rows:
            return []
        found = repo.members_of_groups(self.session, [row.id for row in rows]) if members else {}
        return [
            group_from_row(
                row,
                base_url=self.ctx.base_url,
                members=found.get(row.id, []) if members else None,
            )
            for row in rows
        ]

    def _writable(self, group_id: str, conditions: Conditions, method: str) -> DirectoryGroup:
        row = repo.get_group(self.session, group_id, for_update=True)
        if row is None:
            raise NotFoundException(detail=f"Group {group_id} not found")
        conditions.check(etag(row.version), method)
        if row.source != "scim":
            raise MutabilityException(
                detail=f"Group {row.display_name!r} is granted by access policies and kept in "
                "step by the planner; it cannot be changed through SCIM"
            )
        return row

    def _save(
        self,
        row: DirectoryGroup,
        display_name: str,
        external_id: str | None,
        old: set[str],
        new: set[str],
    ) -> None:
        added, removed = new - old, old - new
        renamed = display_name != row.display_name
        if not (added or removed or renamed or external_id != row.external_id):
            return  # nothing changed: same version
        if not display_name:
            raise MutabilityException(attribute="displayName", detail="displayName is required")
        check_group_values({"display_name": display_name, "external_id": external_id})
        if renamed:
            self._check_name(display_name, row.id)
        self._check_members(added)
        repo.remove_members(self.session, row.id, removed)
        repo.add_members(self.session, row.id, added)
        row.display_name = display_name
        row.external_id = external_id
        row.version += 1
        row.updated_at = utcnow()
        self._flush()
        self._notify(added | removed)

    def _check_name(self, display_name: str, own_id: str | None) -> None:
        owner = repo.group_name_owner(self.session, display_name)
        if owner is not None and owner != own_id:
            raise UniquenessException(detail=f"displayName {display_name!r} is already taken")

    def _check_members(self, member_ids: Iterable[str]) -> None:
        wanted = set(member_ids)
        unknown = wanted - repo.visible_user_ids(self.session, wanted)
        if unknown:
            raise InvalidValueException(
                detail=f"members must be existing Users; unknown: {', '.join(sorted(unknown))}"
            )

    def _notify(self, identity_ids: Iterable[str]) -> None:
        for identity_id in sorted(set(identity_ids)):
            self.ctx.identity_changed(identity_id)

    def _flush(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise UniquenessException(detail="displayName is already taken") from exc
