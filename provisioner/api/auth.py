"""Bearer-token checks for the service's own API (auditors, admins)."""

from __future__ import annotations

from fastapi import Request

from provisioner.api.problems import Problem
from provisioner.tokens.service import token_scopes


def require_scope(request: Request, scope: str) -> None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>",
                      headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.db.transaction() as session:
        scopes = token_scopes(session, header[7:].strip())
    if scopes is None:
        raise Problem(401, "Unauthorized", "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    if scope not in scopes and "admin" not in scopes:
        raise Problem(403, "Forbidden", f"this token lacks the {scope!r} scope")


def scope_dependency(scope: str):
    """A dependency checking the bearer token; declare it before any session dependency so the
    check's own short transaction is over before the endpoint's begins."""

    def check(request: Request) -> None:
        require_scope(request, scope)

    return check
