"""``POST /Bulk`` (RFC 7644 §3.7): the token is checked first, then the size limit while the
body is read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisioner.scim.auth import Access
from provisioner.scim.boundary import check_token, run_scim_with_body
from provisioner.scim.bulk import check_payload_size, run_bulk
from provisioner.scim.context import ScimContext
from provisioner.scim.responses import ScimJSONResponse

router = APIRouter()


async def _read_limited(request: Request) -> bytes:
    """The body, refused with 413 as soon as it exceeds ``maxPayloadSize`` (RFC 7644 §3.7.4):
    from Content-Length, or while streaming, before any JSON is parsed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_payload_size(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        check_payload_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/Bulk")
async def bulk(request: Request) -> Response:
    """Run the operations; 200 with a BulkResponse listing each outcome. The token is checked
    before the body is read, so an unauthenticated client is refused without being read."""
    await check_token(request, Access.write)
    raw = await _read_limited(request)

    def work(ctx: ScimContext, payload: Any) -> Response:
        return ScimJSONResponse(run_bulk(ctx, payload))

    return await run_scim_with_body(request, Access.write, work, raw=raw)
