"""``POST /Bulk`` (RFC 7644 §3.7): the size limit is checked while the body is read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from provisioner.scim.auth import WriteAccess
from provisioner.scim.bulk import check_payload_size, run_bulk
from provisioner.scim.deps import ContextDep
from provisioner.scim.protocol import parse_json
from provisioner.scim.responses import ScimJSONResponse

router = APIRouter()


async def bulk_body(request: Request) -> Any:
    """The BulkRequest body; 413 as soon as it exceeds ``maxPayloadSize`` (RFC 7644 §3.7.4),
    from Content-Length or while streaming, before any JSON is parsed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_payload_size(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        check_payload_size(size)
        chunks.append(chunk)
    return parse_json(b"".join(chunks), request.headers.get("content-type"))


@router.post("/Bulk", dependencies=[WriteAccess])
def bulk(ctx: ContextDep, payload: Annotated[Any, Depends(bulk_body)]) -> Response:
    """Run the operations; 200 with a BulkResponse listing each outcome."""
    return ScimJSONResponse(run_bulk(ctx, payload))
