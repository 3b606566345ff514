"""Discovery endpoints (RFC 7644 §4, RFC 7643 §5–§7): ``/ServiceProviderConfig``,
``/ResourceTypes`` and ``/Schemas``, generated from the scim2-models provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from scim2_models import (
    ForbiddenException,
    ListResponse,
    Meta,
    NotFoundException,
    ResourceType,
    Schema,
)
from starlette.responses import Response

from provisioner.scim.auth import Access
from provisioner.scim.boundary import run_scim
from provisioner.scim.context import ScimContext
from provisioner.scim.protocol import base_url
from provisioner.scim.responses import ScimJSONResponse
from provisioner.scim.schemas import PROVIDER

router = APIRouter()

DiscoveryT = TypeVar("DiscoveryT", bound=Any)


async def _authorized(request: Request, handler: Callable[[Request], Response]) -> Response:
    """Discovery needs a valid token too (any SCIM scope)."""

    def work(_ctx: ScimContext) -> Response:
        return handler(request)

    return await run_scim(request, Access.read, work)


def _no_filter(request: Request) -> None:
    """RFC 7644 §4: a filter on a discovery endpoint SHOULD be answered with 403."""
    if any(key.lower() == "filter" for key in request.query_params):
        raise ForbiddenException(detail="Discovery endpoints do not support filtering")


def _located(resource: DiscoveryT, location: str) -> DiscoveryT:
    meta = Meta(resource_type=type(resource).__name__, location=location)
    return resource.model_copy(update={"meta": meta})


def _one(resource: Any, location: str) -> Response:
    located = _located(resource, location)
    return ScimJSONResponse(located.model_dump(), headers={"Content-Location": location})


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request) -> Response:
    return await _authorized(request, _service_provider_config)


def _service_provider_config(request: Request) -> Response:
    """What the service supports; every limit it announces is enforced (RFC 7643 §5)."""
    _no_filter(request)
    assert PROVIDER.config is not None
    return _one(PROVIDER.config, f"{base_url(request)}/ServiceProviderConfig")


@router.get("/ResourceTypes")
async def resource_types(request: Request) -> Response:
    return await _authorized(request, _resource_types)


def _resource_types(request: Request) -> Response:
    """User (with the enterprise extension) and Group (RFC 7643 §6)."""
    _no_filter(request)
    root = f"{base_url(request)}/ResourceTypes"
    items = [_located(rt, f"{root}/{rt.id}") for rt in PROVIDER.resource_types]
    listing = ListResponse[ResourceType](
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return ScimJSONResponse(listing.model_dump())


@router.get("/ResourceTypes/{resource_type_id}")
async def resource_type(resource_type_id: str, request: Request) -> Response:
    return await _authorized(request, lambda r: _resource_type(resource_type_id, r))


def _resource_type(resource_type_id: str, request: Request) -> Response:
    _no_filter(request)
    for rt in PROVIDER.resource_types:
        if rt.id == resource_type_id:
            return _one(rt, f"{base_url(request)}/ResourceTypes/{rt.id}")
    raise NotFoundException(detail=f"Resource type {resource_type_id!r} not found")


@router.get("/Schemas")
async def schemas(request: Request) -> Response:
    return await _authorized(request, _schemas)


def _schemas(request: Request) -> Response:
    """The User, enterprise User and Group schemas (RFC 7643 §7)."""
    _no_filter(request)
    root = f"{base_url(request)}/Schemas"
    items = [_located(schema, f"{root}/{schema.id}") for schema in PROVIDER.schemas]
    listing = ListResponse[Schema](
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return ScimJSONResponse(listing.model_dump())


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, request: Request) -> Response:
    return await _authorized(request, lambda r: _schema(schema_id, r))


def _schema(schema_id: str, request: Request) -> Response:
    _no_filter(request)
    for item in PROVIDER.schemas:
        if item.id == schema_id:
            return _one(item, f"{base_url(request)}/Schemas/{item.id}")
    raise NotFoundException(detail=f"Schema {schema_id!r} not found")
