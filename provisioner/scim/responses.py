"""The response class of the SCIM endpoint (RFC 7644 §3.1: ``application/scim+json``)."""

from __future__ import annotations

from starlette.responses import JSONResponse

SCIM_MEDIA_TYPE = "application/scim+json"


class ScimJSONResponse(JSONResponse):
    """A JSON response with the SCIM media type."""

    media_type = SCIM_MEDIA_TYPE
