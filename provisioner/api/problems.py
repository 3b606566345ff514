"""RFC 7807 problem+json for every error outside /scim/v2 (which answers SCIM error bodies)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM = "application/problem+json"


class Problem(Exception):
    """Raise from services or endpoints: becomes an RFC 7807 response."""

    def __init__(self, status: int, title: str, detail: str, *, type_: str = "about:blank",
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.type, self.headers, self.extra = type_, headers, extra


def problem_response(status: int, title: str, detail: str, *, type_: str = "about:blank",
                     instance: str | None = None, headers: dict[str, str] | None = None,
                     **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_problem(errors: list[dict[str, Any]], instance: str | None = None, *,
                       total: int | None = None) -> JSONResponse:
    """400 listing the errors; ``total`` (when more were found than listed) adds ``error_count``."""
    fields = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors]
    first = fields[0] if fields else {"field": "body", "message": "invalid"}
    extra: dict[str, Any] = {} if total is None else {"error_count": total}
    return problem_response(
        400, "Invalid request", f"{first['field']}: {first['message']}",
        type_="urn:provisioner:problem:validation", instance=instance, errors=fields, **extra)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, type_=exc.type,
                                instance=request.url.path, headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(list(exc.errors()), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), str(exc.detail),
                                instance=request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never a plain-text 500: the error is logged (with its traceback) by the server.
        return problem_response(500, "Internal error", "the request failed unexpectedly (the server logged why)",
                                instance=request.url.path)
