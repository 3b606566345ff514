"""``POST /.search`` at the SCIM root (RFC 7644 §3.4.3): Users and Groups in one query."""

from __future__ import annotations

from typing import Any, Union

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisioner.scim.auth import Access
from provisioner.scim.boundary import run_scim_with_body
from provisioner.scim.context import ScimContext
from provisioner.scim.protocol import list_response
from provisioner.scim.query import list_query_from_body
from provisioner.scim.schemas import GroupResource, UserResource
from provisioner.scim.service_search import search_all

router = APIRouter()

AnyResource = Union[UserResource, GroupResource]


@router.post("/.search")
async def search(request: Request) -> Response:
    """Search Users and Groups at once."""

    def work(ctx: ScimContext, body: Any) -> Response:
        query = list_query_from_body(AnyResource, body)
        return list_response(AnyResource, search_all(ctx, query), query.response)

    return await run_scim_with_body(request, Access.read, work)
