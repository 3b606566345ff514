"""``/Groups`` routes (RFC 7644 §3.3–§3.6); thin: parse, call :class:`GroupService`, render."""

from __future__ import annotations

from fastapi import APIRouter, Request
from scim2_models import Context
from starlette.responses import Response

from provisioner.scim.auth import ReadAccess, WriteAccess
from provisioner.scim.deps import BodyDep, ContextDep, QueryDep
from provisioner.scim.protocol import (
    Conditions,
    list_response,
    not_modified,
    resource_body,
    resource_response,
)
from provisioner.scim.query import list_query_from_body, list_query_from_params, response_parameters
from provisioner.scim.schemas import GroupResource, etag
from provisioner.scim.service_groups import GroupService

router = APIRouter(prefix="/Groups")


@router.get("", dependencies=[ReadAccess])
def list_groups(ctx: ContextDep, params: QueryDep) -> Response:
    """Query groups (RFC 7644 §3.4.2); Entra ID: ``displayName eq`` with
    ``excludedAttributes=members``."""
    query = list_query_from_params(GroupResource, params)
    return list_response(GroupResource, GroupService(ctx).search(query), query.response)


@router.post("/.search", dependencies=[ReadAccess])
def search_groups(ctx: ContextDep, body: BodyDep) -> Response:
    """Query groups with a SearchRequest body (RFC 7644 §3.4.3)."""
    query = list_query_from_body(GroupResource, body)
    return list_response(GroupResource, GroupService(ctx).search(query), query.response)


@router.post("", dependencies=[WriteAccess])
def create_group(ctx: ContextDep, body: BodyDep, params: QueryDep) -> Response:
    """Create a group (RFC 7644 §3.3): 201; 409 on a taken displayName."""
    group = GroupService(ctx).create(body)
    parameters = response_parameters(GroupResource, params)
    assert group.meta is not None
    return resource_response(
        resource_body(group, parameters, Context.RESOURCE_CREATION_RESPONSE),
        version=group.meta.version,
        location=group.meta.location,
        status_code=201,
        created=True,
    )


@router.get("/{group_id}", dependencies=[ReadAccess])
def get_group(group_id: str, request: Request, ctx: ContextDep, params: QueryDep) -> Response:
    """Read a group (RFC 7644 §3.4.1); ``If-None-Match`` with its ETag answers 304."""
    parameters = response_parameters(GroupResource, params)
    group = GroupService(ctx).get(group_id, parameters)
    assert group.meta is not None and group.meta.version is not None
    if not Conditions.of(request).check(group.meta.version, "GET"):
        return not_modified(group.meta.version)
    return resource_response(
        resource_body(group, parameters, Context.RESOURCE_QUERY_RESPONSE),
        version=group.meta.version,
        location=group.meta.location,
    )


@router.put("/{group_id}", dependencies=[WriteAccess])
def replace_group(
    group_id: str, request: Request, ctx: ContextDep, body: BodyDep, params: QueryDep
) -> Response:
    """Replace a group (RFC 7644 §3.5.1)."""
    group = GroupService(ctx).replace(group_id, body, Conditions.of(request))
    parameters = response_parameters(GroupResource, params)
    assert group.meta is not None
    return resource_response(
        resource_body(group, parameters, Context.RESOURCE_REPLACEMENT_RESPONSE),
        version=group.meta.version,
        location=group.meta.location,
    )


@router.patch("/{group_id}", dependencies=[WriteAccess])
def patch_group(
    group_id: str, request: Request, ctx: ContextDep, body: BodyDep, params: QueryDep
) -> Response:
    """Modify a group (RFC 7644 §3.5.2).

    204 with the new ETag, as Entra ID expects and RFC 7644 §3.5.2 allows, so a membership
    change does not serialise every member; with ``attributes`` or ``excludedAttributes``,
    200 with the resource.
    """
    service = GroupService(ctx)
    row = service.patch(group_id, body, Conditions.of(request))
    parameters = response_parameters(GroupResource, params)
    if not parameters.attributes and not parameters.excluded_attributes:
        return Response(status_code=204, headers={"ETag": etag(row.version)})
    group = service.get(group_id, parameters)
    assert group.meta is not None
    return resource_response(
        resource_body(group, parameters, Context.RESOURCE_PATCH_RESPONSE),
        version=group.meta.version,
        location=group.meta.location,
    )


@router.delete("/{group_id}", dependencies=[WriteAccess])
def delete_group(group_id: str, request: Request, ctx: ContextDep) -> Response:
    """Delete a group (RFC 7644 §3.6): 204."""
    GroupService(ctx).delete(group_id, Conditions.of(request))
    return Response(status_code=204)
