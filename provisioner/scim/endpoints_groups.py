"""``/Groups`` routes (RFC 7644 §3.3–§3.6); thin: parse, call :class:`GroupService`, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from scim2_models import Context
from starlette.responses import Response

from provisioner.scim.auth import Access
from provisioner.scim.boundary import run_scim, run_scim_with_body
from provisioner.scim.context import ScimContext
from provisioner.scim.protocol import (
    Conditions,
    list_response,
    model_response,
    not_modified,
)
from provisioner.scim.query import list_query_from_body, list_query_from_params, response_parameters
from provisioner.scim.schemas import GroupResource, etag
from provisioner.scim.service_groups import GroupService

router = APIRouter(prefix="/Groups")


@router.get("")
async def list_groups(request: Request) -> Response:
    """Query groups (RFC 7644 §3.4.2); Entra ID: ``displayName eq`` with
    ``excludedAttributes=members``."""
    params = dict(request.query_params)

    def work(ctx: ScimContext) -> Response:
        query = list_query_from_params(GroupResource, params)
        return list_response(GroupResource, GroupService(ctx).search(query), query.response)

    return await run_scim(request, Access.read, work)


@router.post("/.search")
async def search_groups(request: Request) -> Response:
    """Query groups with a SearchRequest body (RFC 7644 §3.4.3)."""

    def work(ctx: ScimContext, body: Any) -> Response:
        query = list_query_from_body(GroupResource, body)
        return list_response(GroupResource, GroupService(ctx).search(query), query.response)

    return await run_scim_with_body(request, Access.read, work)


@router.post("")
async def create_group(request: Request) -> Response:
    """Create a group (RFC 7644 §3.3): 201; 409 on a taken displayName."""
    params = dict(request.query_params)

    def work(ctx: ScimContext, body: Any) -> Response:
        group = GroupService(ctx).create(body)
        return model_response(
            GroupResource, group, params, Context.RESOURCE_CREATION_RESPONSE, status_code=201
        )

    return await run_scim_with_body(request, Access.write, work)


@router.get("/{group_id}")
async def get_group(group_id: str, request: Request) -> Response:
    """Read a group (RFC 7644 §3.4.1); ``If-None-Match`` with its ETag answers 304."""
    params = dict(request.query_params)
    conditions = Conditions.of(request)

    def work(ctx: ScimContext) -> Response:
        parameters = response_parameters(GroupResource, params)
        group = GroupService(ctx).get(group_id, parameters)
        assert group.meta is not None and group.meta.version is not None
        if not conditions.check(group.meta.version, "GET"):
            return not_modified(group.meta.version)
        return model_response(
            GroupResource, group, params, Context.RESOURCE_QUERY_RESPONSE, parameters=parameters
        )

    return await run_scim(request, Access.read, work)


@router.put("/{group_id}")
async def replace_group(group_id: str, request: Request) -> Response:
    """Replace a group (RFC 7644 §3.5.1): members not listed are removed."""
    params = dict(request.query_params)
    conditions = Conditions.of(request)

    def work(ctx: ScimContext, body: Any) -> Response:
        group = GroupService(ctx).replace(group_id, body, conditions)
        return model_response(GroupResource, group, params, Context.RESOURCE_REPLACEMENT_RESPONSE)

    return await run_scim_with_body(request, Access.write, work)


@router.patch("/{group_id}")
async def patch_group(group_id: str, request: Request) -> Response:
    """Modify a group (RFC 7644 §3.5.2).

    204 with the new ETag, as Entra ID expects and RFC 7644 §3.5.2 allows, so a membership
    change does not serialise every member; with ``attributes`` or ``excludedAttributes``,
    200 with the resource.
    """
    params = dict(request.query_params)
    conditions = Conditions.of(request)

    def work(ctx: ScimContext, body: Any) -> Response:
        service = GroupService(ctx)
        row = service.patch(group_id, body, conditions)
        parameters = response_parameters(GroupResource, params)
        if not parameters.attributes and not parameters.excluded_attributes:
            return Response(status_code=204, headers={"ETag": etag(row.version)})
        group = service.get(group_id, parameters)
        return model_response(
            GroupResource, group, params, Context.RESOURCE_PATCH_RESPONSE, parameters=parameters
        )

    return await run_scim_with_body(request, Access.write, work)


@router.delete("/{group_id}")
async def delete_group(group_id: str, request: Request) -> Response:
    """Delete a group (RFC 7644 §3.6): 204."""
    conditions = Conditions.of(request)

    def work(ctx: ScimContext) -> Response:
        GroupService(ctx).delete(group_id, conditions)
        return Response(status_code=204)

    return await run_scim(request, Access.write, work)
