"""Microsoft Graph error responses, shaped as Graph documents them.

Graph answers every failure with a JSON body of the form (learn.microsoft.com/graph/errors)::

    {"error": {"code": "...", "message": "...",
               "innerError": {"date": "...", "request-id": "...", "client-request-id": "..."}}}

Handlers and the directory raise :class:`GraphError`; the sandbox's pipeline turns it into that
body (see :func:`error_response`). Status codes and error codes are Graph's; messages are Entra's
own wording where it is documented or well known (404, duplicate values, existing members), and
the sandbox's elsewhere: callers should branch on status and code, never on messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from provisioner.clock import utcnow
from provisioner.sandbox.graph.messages import GraphResponse

# Error codes Graph uses for the directory (users, groups) workload.
NOT_FOUND = "Request_ResourceNotFound"
BAD_REQUEST = "Request_BadRequest"
UNSUPPORTED_QUERY = "Request_UnsupportedQuery"
ODATA_BAD_REQUEST = "BadRequest"  # raised by Graph's OData layer (URL, query options, JSON)
EXPIRED_PAGE_TOKEN = "Directory_ExpiredPageToken"
TOO_MANY_REQUESTS = "TooManyRequests"
INVALID_TOKEN = "InvalidAuthenticationToken"
SYNC_STATE_NOT_FOUND = "syncStateNotFound"

ALREADY_MEMBER_MESSAGE = (
    "One or more added object references already exist for the following modified properties: 'members'."
)


class GraphError(Exception):
    """A failure to report as a Graph error response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def not_found(object_id: str) -> GraphError:
    """404 for a missing directory object, with Entra's wording."""
    return GraphError(
        404,
        NOT_FOUND,
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def bad_request(message: str, code: str = BAD_REQUEST) -> GraphError:
    """400 for a request the directory refuses."""
    return GraphError(400, code, message)


def duplicate_value(property_name: str) -> GraphError:
    """400 Entra returns when a unique property (userPrincipalName, proxyAddresses) is taken."""
    return bad_request(f"Another object with the same value for property {property_name} already exists.")


def invalid_value(property_name: str, resource: str) -> GraphError:
    """400 Entra returns for a missing required property or a malformed value."""
    return bad_request(f"Invalid value specified for property '{property_name}' of resource '{resource}'.")


def unknown_property(property_name: str) -> GraphError:
    """400 Entra returns when a request body names a property the type doesn't declare."""
    return bad_request(
        f"Property '{property_name}' does not exist as a declared property or extension property."
    )


def too_many_requests(retry_after: int, message: str, *, reason: str | None = None) -> GraphError:
    """429 with the ``Retry-After`` header (whole seconds) Graph sends with it."""
    headers = {"Retry-After": str(retry_after)}
    if reason is not None:
        headers["x-ms-throttle-information"] = reason
    return GraphError(429, TOO_MANY_REQUESTS, message, headers=headers)


def error_response(error: GraphError, client_request_id: str | None = None) -> GraphResponse:
    """The Graph error body and headers for ``error``."""
    request_id = str(uuid.uuid4())
    inner = {
        "date": utcnow().strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
    return GraphResponse(error.status, body, {"request-id": request_id, **error.headers})
