"""``POST /.search`` at the SCIM root (RFC 7644 §3.4.3): Users and Groups in one query."""

from __future__ import annotations

from typing import Union

from fastapi import APIRouter
from starlette.responses import Response

from provisioner.scim.auth import ReadAccess
from provisioner.scim.deps import BodyDep, ContextDep
from provisioner.scim.protocol import list_response
from provisioner.scim.query import list_query_from_body
from provisioner.scim.schemas import GroupResource, UserResource
from provisioner.scim.service_search import search_all

router = APIRouter()

AnyResource = Union[UserResource, GroupResource]  # noqa: UP007


@router.post("/.search", dependencies=[ReadAccess])
def search(ctx: ContextDep, body: BodyDep) -> Response:
    """Search Users and Groups at once."""
    query = list_query_from_body(AnyResource, body)
    return list_response(AnyResource, search_all(ctx, query), query.response)
