"""Console sign-in (an API token), sign-out and the overview page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from provisioner.api.deps import SessionDep
from provisioner.clock import utcnow
from provisioner.console import service
from provisioner.console.session import (
    ConsoleUser,
    current_user,
    keep_sign_in_form_token,
    roles_of,
    sign_in,
    sign_in_form_ok,
    sign_in_form_token,
    sign_out,
)
from provisioner.console.web import ConsoleForbidden, Poster, Viewer, page
from provisioner.tokens.service import token_identity

router = APIRouter()


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return _sign_in_form(request)


def sign_in_error(request: Request, status_code: int, error: str) -> HTMLResponse:
    """The sign-in page with what went wrong (an Entra sign-in that failed, too)."""
    return _sign_in_form(request, status_code, error)


def _sign_in_form(request: Request, status_code: int = 200, error: str | None = None) -> HTMLResponse:
    token = sign_in_form_token(request)
    settings = request.app.state.settings
    response = page(request, "sign_in.html", current_user(request), status_code=status_code, error=error,
                    form_token=token, entra=bool(settings.console_oidc_authority and settings.console_oidc_client_id))
    keep_sign_in_form_token(response, token, request)
    return response


@router.post("/sign-in")
def sign_in_with_token(request: Request, session: SessionDep, token: Annotated[str, Form(max_length=500)] = "",
                       csrf_token: Annotated[str, Form(max_length=100)] = ""):
    """An API token signs in: its name is who acts, its scopes (admin, approver, auditor, viewer) the roles."""
    if not sign_in_form_ok(request, csrf_token):
        raise ConsoleForbidden("the sign-in form's CSRF token is missing or wrong: reload the sign-in page")
    found = token_identity(session, token.strip()) if token.strip() else None
    roles = roles_of(found[1]) if found else frozenset()
    if not found or not roles:
        why = ("unknown or revoked token" if not found else
               "this token has no console role: it needs the admin, approver, auditor or viewer scope")
        return _sign_in_form(request, 401, why)
    response = RedirectResponse(str(request.url_for("overview")), status_code=303)
    user = sign_in(response, ConsoleUser(found[0], roles), request)
    service.record(session, user, "signed_in", None, method="api-token")
    return response


@router.post("/sign-out")
def sign_out_now(request: Request, user: Poster, session: SessionDep):
    service.record(session, user, "signed_out")
    response = RedirectResponse(str(request.url_for("sign_in_page")), status_code=303)
    sign_out(response, request)
    return response


@router.get("", response_class=HTMLResponse, name="overview")
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def overview(request: Request, user: Viewer, session: SessionDep) -> HTMLResponse:
    halts = getattr(request.app.state, "target_halts", None)
    return page(request, "overview.html", user, o=service.overview(session, halts, utcnow()))
