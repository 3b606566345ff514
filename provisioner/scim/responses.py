"""The response class of the SCIM endpoint (RFC 7644 §3.1: ``application/scim+json``)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

SCIM_MEDIA_TYPE = "application/scim+json"


class ScimJSONResponse(JSONResponse):
    """A JSON response with the SCIM media type, serialised with orjson."""

    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
