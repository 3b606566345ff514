"""Console sign-in with Entra ID (OpenID Connect, authorization code flow with PKCE, through
msal: :mod:`provisioner.console.entra_signin`): ``/console/sign-in/entra`` sends the browser to
the authority; ``/console/auth/callback`` (the app registration's redirect URI) finishes it and
starts a console session with the roles of the token's ``roles`` claim. Offered when
``PROVISIONER_CONSOLE_OIDC_*`` is configured."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from provisioner.api.deps import SessionDep
from provisioner.console import service
from provisioner.console.endpoints import sign_in_error
from provisioner.console.session import ConsoleUser, keep_flow, sign_in, take_flow

router = APIRouter()


def relying_party(request: Request):
    """The app's relying party (built on first use from the app's settings), or None when the
    console's Entra sign-in is not configured."""
    state = request.app.state
    if getattr(state, "console_entra", None) is None:
        settings = state.settings
        if not (settings.console_oidc_authority and settings.console_oidc_client_id):
            return None
        from provisioner.console.entra_signin import EntraSignIn, SignInConfig

        state.console_entra = EntraSignIn(SignInConfig.from_settings(settings))
    return state.console_entra


@router.get("/sign-in/entra", name="sign_in_entra")
def sign_in_entra(request: Request) -> Response:
    from provisioner.console.entra_signin import SignInError

    party = relying_party(request)
    if party is None:
        return sign_in_error(request, 404, "sign-in with Entra ID is not configured (PROVISIONER_CONSOLE_OIDC_*)")
    try:
        auth_uri, flow = party.begin()
    except SignInError as exc:
        return sign_in_error(request, 502, str(exc))
    response = RedirectResponse(auth_uri, status_code=303)
    keep_flow(response, flow, request)
    return response


@router.get("/auth/callback", name="entra_callback")
def entra_callback(request: Request, session: SessionDep) -> Response:
    from provisioner.console.entra_signin import SignInError

    party = relying_party(request)
    if party is None:
        return sign_in_error(request, 404, "sign-in with Entra ID is not configured (PROVISIONER_CONSOLE_OIDC_*)")
    response = RedirectResponse(str(request.url_for("overview")), status_code=303)
    flow = take_flow(request, response)
    if flow is None:
        return sign_in_error(request, 400, "this sign-in expired or was already used: sign in again")
    try:
        who = party.finish(flow, dict(request.query_params))
    except SignInError as exc:
        return sign_in_error(request, 401, str(exc))
    user = sign_in(response, ConsoleUser(who.username or who.name, frozenset(who.roles)), request)
    service.record(session, user, "signed_in", None, method="entra", display_name=who.name)
    return response
