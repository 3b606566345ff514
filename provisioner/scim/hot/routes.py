"""A raw ASGI fast path for the busiest SCIM reads: ``GET /Users`` and ``GET /Users/{id}``.

Provisioning clients look people up one at a time (``filter=userName eq "..."``, Okta and
Entra ID before every create or update), so these two requests are most of the load. FastAPI's
per-request machinery (middleware layers, routing, the endpoint's signature handling) costs
about as much as the lookup itself; this middleware, the outermost of the SCIM sub-application,
calls the same endpoint functions directly for them and lets every other request through.

Errors are answered exactly as the sub-application's handlers answer them: a SCIM exception
(401, 403, 404, 400 invalidFilter...) with its Error body, a pydantic validation error as 400,
anything else as a 500 Error without details (logged).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from scim2_models import SCIMException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from provisioner.scim import endpoints_users
from provisioner.scim.errors import (
    _pydantic_validation_handler,
    _scim_exception_handler,
    error_response,
)
from provisioner.scim.hot.middleware import route_path, user_id_of

log = logging.getLogger(__name__)


class UsersReadFastPath:
    """Serve ``GET /Users`` and ``GET /Users/{id}`` without the FastAPI routing layers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the two reads; pass every other request on."""
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        user_id = user_id_of(path[6:]) if path.startswith("/Users") else None
        if user_id is None and path != "/Users":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            if user_id is None:
                response = await endpoints_users.list_users(request)
            else:
                response = await endpoints_users.get_user(user_id, request)
        except SCIMException as exc:
            response = await _scim_exception_handler(request, exc)
        except ValidationError as exc:
            response = await _pydantic_validation_handler(request, exc)
        except Exception:
            log.exception("scim: unexpected error on GET %s", scope.get("path"))
            error = SCIMException(detail="Internal server error")
            error.status = 500
            response = error_response(error)
        await response(scope, receive, send)

