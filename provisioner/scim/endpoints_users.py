"""``/Users`` routes (RFC 7644 §3.3–§3.6); thin: parse, call :class:`UserService`, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from scim2_models import Context
from starlette.responses import Response

from provisioner.scim.auth import Access
from provisioner.scim.boundary import run_scim, run_scim_with_body
from provisioner.scim.context import ScimContext
from provisioner.scim.hot.render import list_body
from provisioner.scim.protocol import (
    Conditions,
    list_response,
    model_response,
    not_modified,
    resource_response,
)
from provisioner.scim.query import (
    is_plain,
    list_query_from_body,
    list_query_from_params,
    response_parameters,
)
from provisioner.scim.responses import ScimJSONResponse
from provisioner.scim.schemas import UserResource, etag
from provisioner.scim.service_users import UserService

router = APIRouter(prefix="/Users")


@router.get("")
async def list_users(request: Request) -> Response:
    """Query users: filter, sortBy/sortOrder, startIndex/count, attributes (RFC 7644 §3.4.2)."""
    params = dict(request.query_params)

    def work(ctx: ScimContext) -> Response:
        query = list_query_from_params(UserResource, params)
        if is_plain(query.response):
            page = UserService(ctx).search_bodies(query)
            return ScimJSONResponse(list_body(page.total, page.start_index, page.resources))
        return list_response(UserResource, UserService(ctx).search(query), query.response)

    return await run_scim(request, Access.read, work)


@router.post("/.search")
async def search_users(request: Request) -> Response:
    """Query users with a SearchRequest body (RFC 7644 §3.4.3)."""

    def work(ctx: ScimContext, body: Any) -> Response:
        query = list_query_from_body(UserResource, body)
        return list_response(UserResource, UserService(ctx).search(query), query.response)

    return await run_scim_with_body(request, Access.read, work)


@router.post("")
async def create_user(request: Request) -> Response:
    """Create a user (RFC 7644 §3.3): 201 with Location and ETag; 409 on a taken userName."""
    params = dict(request.query_params)

    def work(ctx: ScimContext, body: Any) -> Response:
        user = UserService(ctx).create(body)
        return model_response(
            UserResource, user, params, Context.RESOURCE_CREATION_RESPONSE, status_code=201
        )

    return await run_scim_with_body(request, Access.write, work)


@router.get("/{user_id}")
async def get_user(user_id: str, request: Request) -> Response:
    """Read a user (RFC 7644 §3.4.1); ``If-None-Match`` with its ETag answers 304."""
    params = dict(request.query_params)
    conditions = Conditions.of(request)

    def work(ctx: ScimContext) -> Response:
        parameters = response_parameters(UserResource, params)
        if is_plain(parameters):
            identity, body = UserService(ctx).get_body(user_id)
            version = etag(identity.version)
            if not conditions.check(version, "GET"):
                return not_modified(version)
            return resource_response(
                body, version=version, location=body["meta"]["location"]
            )
        user = UserService(ctx).get(user_id, parameters)
        assert user.meta is not None and user.meta.version is not None
        if not conditions.check(user.meta.version, "GET"):
            return not_modified(user.meta.version)
        return model_response(
            UserResource, user, params, Context.RESOURCE_QUERY_RESPONSE, parameters=parameters
        )

    return await run_scim(request, Access.read, work)


@router.put("/{user_id}")
async def replace_user(user_id: str, request: Request) -> Response:
    """Replace a user (RFC 7644 §3.5.1); an ``If-Match`` mismatch is 412."""
    params = dict(request.query_params)
    conditions = Conditions.of(request)

    def work(ctx: ScimContext, body: Any) -> Response:
        user = UserService(ctx).replace(user_id, body, conditions)
        return model_response(UserResource, user, params, Context.RESOURCE_REPLACEMENT_RESPONSE)

    return await run_scim_with_body(request, Access.write, work)


@router.patch("/{user_id}")
async def patch_user(user_id: str, request: Request) -> Response:
    """Modify a user (RFC 7644 §3.5.2): 200 with the resource."""
    params = dict(request.query_params)
    conditions = Conditions.of(request)

    def work(ctx: ScimContext, body: Any) -> Response:
        user = UserService(ctx).patch(user_id, body, conditions)
        return model_response(UserResource, user, params, Context.RESOURCE_PATCH_RESPONSE)

    return await run_scim_with_body(request, Access.write, work)


@router.delete("/{user_id}")
async def delete_user(user_id: str, request: Request) -> Response:
    """Delete a user (RFC 7644 §3.6): 204; later requests on it are 404."""
    conditions = Conditions.of(request)

    def work(ctx: ScimContext) -> Response:
        UserService(ctx).delete(user_id, conditions)
        return Response(status_code=204)

    return await run_scim(request, Access.write, work)
