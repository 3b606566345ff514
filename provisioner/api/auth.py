"""Bearer-token checks for the service's own API (auditors, admins)."""

from __future__ import annotations

from collections.abc import Collection

from fastapi import Request

from provisioner.api.problems import Problem
from provisioner.tokens.service import token_identity


def require_scope(request: Request, scope: str | Collection[str]) -> str:
    """Check the bearer token holds ``scope`` (or one of several; ``admin`` holds every one) and
    return the token's name: who acts, as decisions record it."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>",
                      headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.db.transaction() as session:
        found = token_identity(session, header[7:].strip())
    if found is None:
        raise Problem(401, "Unauthorized", "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    name, scopes = found
    wanted = {scope} if isinstance(scope, str) else set(scope)
    if not wanted & scopes and "admin" not in scopes:
        what = " or ".join(repr(s) for s in sorted(wanted))
        raise Problem(403, "Forbidden", f"this token lacks the {what} scope")
    return name


def scope_dependency(scope: str | Collection[str]):
    """A dependency checking the bearer token; declare it before any session dependency so the
    check's own short transaction is over before the endpoint's begins."""

    def check(request: Request) -> str:
        return require_scope(request, scope)

    return check
