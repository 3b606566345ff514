"""``POST /.search`` at the root: one query over Users and Groups (RFC 7644 §3.4.3, §3.4.2.1).

An attribute only one resource type has is treated as unassigned on the other ("For filtered
attributes that are not part of a particular resource type, the service provider SHALL treat
the attribute as if there is no attribute value", §3.4.2.1), so that type contributes nothing;
a filter no resource type can evaluate is ``400 invalidFilter``. Results are Users then Groups,
each in the requested order, paged over the concatenation.
"""

from __future__ import annotations

from typing import Any

from scim2_models import SCIMException
from sqlalchemy import ColumnElement

from provisioner.scim import repository as repo
from provisioner.scim.context import ScimContext
from provisioner.scim.filters import FilterSchema, compile_filter
from provisioner.scim.query import ListQuery, Page, order_by, wants
from provisioner.scim.service_groups import GroupService
from provisioner.scim.service_users import UserService


def search_all(ctx: ScimContext, query: ListQuery) -> Page:
    """Search every resource type at once."""
    user_filter, user_error = _compile(repo.USER_FILTERS, query, ctx.dialect)
    group_filter, _ = _compile(repo.GROUP_FILTERS, query, ctx.dialect)
    if user_filter is None and group_filter is None:
        assert user_error is not None
        raise user_error
    user_order = _order(repo.USER_FILTERS, query)
    group_order = _order(repo.GROUP_FILTERS, query)
    if query.sort_by and user_order is None and group_order is None:
        order_by(repo.USER_FILTERS, query)  # raises the sortBy error

    session = ctx.session
    user_total = repo.count_users(session, user_filter) if user_filter is not None else 0
    group_total = repo.count_groups(session, group_filter) if group_filter is not None else 0
    offset = query.start_index - 1
    users = []
    if user_filter is not None and offset < user_total:
        users = repo.search_users(session, user_filter, user_order or [], offset, query.count)
    groups = []
    remaining = query.count - len(users)
    if group_filter is not None and remaining > 0:
        group_offset = max(0, offset - user_total)
        groups = repo.search_groups(
            session, group_filter, group_order or [], group_offset, remaining
        )
    resources: list[Any] = UserService(ctx).render(users, groups=wants(query.response, "groups"))
    resources += GroupService(ctx).render(groups, members=wants(query.response, "members"))
    return Page(total=user_total + group_total, start_index=query.start_index, resources=resources)


def _compile(
    schema: FilterSchema, query: ListQuery, dialect: str
) -> tuple[ColumnElement[bool] | None, SCIMException | None]:
    try:
        return compile_filter(schema, query.filter, dialect), None
    except SCIMException as exc:
        return None, exc


def _order(schema: FilterSchema, query: ListQuery) -> list[Any] | None:
    try:
        return order_by(schema, query)
    except SCIMException:
        return None
