"""SCIM error responses (RFC 7644 §3.12) for everything under ``/scim/v2``.

Every failure under the prefix, including 404 on an unknown path, 405, a malformed body and an
unexpected exception, answers an ``urn:ietf:params:scim:api:messages:2.0:Error`` body with the
status as a string, a ``scimType`` where RFC 7644 Table 9 defines one, and the content type
``application/scim+json``. The handlers are installed on the SCIM sub-application only, so the
rest of the service keeps its RFC 7807 problem responses.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from scim2_models import (
    Error,
    InvalidSyntaxException,
    InvalidValueException,
    SCIMException,
    UnauthorizedException,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisioner.scim.responses import ScimJSONResponse

log = logging.getLogger(__name__)

WWW_AUTHENTICATE = 'Bearer realm="SCIM"'
"""RFC 6750 §3 challenge of a 401 (RFC 7644 §2 bearer authentication)."""


class UnsupportedMediaTypeException(SCIMException):
    """A request body that is not JSON (RFC 7644 §3.1 and §8.1: SCIM bodies are JSON)."""

    status = 415
    scim_type = ""
    _default_detail = "The request body must be application/scim+json or application/json"


class MethodNotAllowedException(SCIMException):
    """An endpoint that does not support the method (RFC 7644 §3.12, status 405)."""

    status = 405
    scim_type = ""
    _default_detail = "The endpoint does not support this method"


def scim_exception_from_validation(exc: ValidationError) -> SCIMException:
    """The SCIM exception of a payload scim2-models refused (first error, with its scimType)."""
    errors = Error.from_validation_errors(exc)
    if errors:
        return SCIMException.from_error(errors[0])
    return InvalidValueException(detail=str(exc))


def error_response(exc: SCIMException, headers: dict[str, str] | None = None) -> Response:
    """The response carrying the Error of an exception."""
    error = exc.to_error()
    status = int(error.status or exc.status or 400)
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
    return ScimJSONResponse(error.model_dump(), status_code=status, headers=all_headers)


async def _scim_exception_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SCIMException)
    headers: dict[str, str] = {}
    if isinstance(exc, UnauthorizedException) and exc.context.get("invalid_token"):
        headers["WWW-Authenticate"] = f'{WWW_AUTHENTICATE}, error="invalid_token"'
    return error_response(exc, headers)


async def _pydantic_validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return error_response(scim_exception_from_validation(exc))


async def _request_validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
    )
    return error_response(InvalidSyntaxException(detail=details or "Invalid request"))


async def _http_exception_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    if exc.status_code == 404:
        detail = "No SCIM endpoint or resource at this address"
    scim_exc = SCIMException(detail=detail)
    scim_exc.status = exc.status_code
    headers = dict(exc.headers or {})
    return error_response(scim_exc, headers)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of the SCIM sub-application a SCIM Error response."""
    app.add_exception_handler(SCIMException, _scim_exception_handler)
    app.add_exception_handler(ValidationError, _pydantic_validation_handler)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_middleware(UnexpectedErrorMiddleware)


class UnexpectedErrorMiddleware:
    """Answer an unexpected exception with a SCIM 500 Error instead of a plain-text page.

    The exception is logged with its traceback and not re-raised, so the parent application's
    problem+json handler never answers for a SCIM path. The detail never carries the message
    (RFC 7644 §7: no internal information in errors).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application; answer a 500 Error if it raises before responding."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("scim: unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            error = SCIMException(detail="Internal server error")
            error.status = 500
            response = error_response(error)
            await response(scope, receive, send)
