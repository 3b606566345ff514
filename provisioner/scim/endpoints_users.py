"""``/Users`` routes (RFC 7644 §3.3–§3.6); thin: parse, call :class:`UserService`, render."""

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
from provisioner.scim.schemas import UserResource
from provisioner.scim.service_users import UserService

router = APIRouter(prefix="/Users")


@router.get("", dependencies=[ReadAccess])
def list_users(ctx: ContextDep, params: QueryDep) -> Response:
    """Query users: filter, sortBy/sortOrder, startIndex/count, attributes (RFC 7644 §3.4.2)."""
    query = list_query_from_params(UserResource, params)
    return list_response(UserResource, UserService(ctx).search(query), query.response)


@router.post("/.search", dependencies=[ReadAccess])
def search_users(ctx: ContextDep, body: BodyDep) -> Response:
    """Query users with a SearchRequest body (RFC 7644 §3.4.3)."""
    query = list_query_from_body(UserResource, body)
    return list_response(UserResource, UserService(ctx).search(query), query.response)


@router.post("", dependencies=[WriteAccess])
def create_user(ctx: ContextDep, body: BodyDep, params: QueryDep) -> Response:
    """Create a user (RFC 7644 §3.3): 201 with Location and ETag; 409 on a taken userName."""
    user = UserService(ctx).create(body)
    parameters = response_parameters(UserResource, params)
    assert user.meta is not None
    return resource_response(
        resource_body(user, parameters, Context.RESOURCE_CREATION_RESPONSE),
        version=user.meta.version,
        location=user.meta.location,
        status_code=201,
        created=True,
    )


@router.get("/{user_id}", dependencies=[ReadAccess])
def get_user(user_id: str, request: Request, ctx: ContextDep, params: QueryDep) -> Response:
    """Read a user (RFC 7644 §3.4.1); ``If-None-Match`` with its ETag answers 304."""
    parameters = response_parameters(UserResource, params)
    user = UserService(ctx).get(user_id, parameters)
    assert user.meta is not None and user.meta.version is not None
    if not Conditions.of(request).check(user.meta.version, "GET"):
        return not_modified(user.meta.version)
    return resource_response(
        resource_body(user, parameters, Context.RESOURCE_QUERY_RESPONSE),
        version=user.meta.version,
        location=user.meta.location,
    )


@router.put("/{user_id}", dependencies=[WriteAccess])
def replace_user(
    user_id: str, request: Request, ctx: ContextDep, body: BodyDep, params: QueryDep
) -> Response:
    """Replace a user (RFC 7644 §3.5.1); ``If-Match`` mismatch is 412."""
    user = UserService(ctx).replace(user_id, body, Conditions.of(request))
    parameters = response_parameters(UserResource, params)
    assert user.meta is not None
    return resource_response(
        resource_body(user, parameters, Context.RESOURCE_REPLACEMENT_RESPONSE),
        version=user.meta.version,
        location=user.meta.location,
    )


@router.patch("/{user_id}", dependencies=[WriteAccess])
def patch_user(
    user_id: str, request: Request, ctx: ContextDep, body: BodyDep, params: QueryDep
) -> Response:
    """Modify a user (RFC 7644 §3.5.2): 200 with the resource."""
    user = UserService(ctx).patch(user_id, body, Conditions.of(request))
    parameters = response_parameters(UserResource, params)
    assert user.meta is not None
    return resource_response(
        resource_body(user, parameters, Context.RESOURCE_PATCH_RESPONSE),
        version=user.meta.version,
        location=user.meta.location,
    )


@router.delete("/{user_id}", dependencies=[WriteAccess])
def delete_user(user_id: str, request: Request, ctx: ContextDep) -> Response:
    """Delete a user (RFC 7644 §3.6): 204; later requests on it are 404."""
    UserService(ctx).delete(user_id, Conditions.of(request))
    return Response(status_code=204)
