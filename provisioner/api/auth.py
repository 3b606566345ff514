"""Bearer-token checks for the service's own API (auditors, admins)."""

from __future__ import annotations

from collections.abc import Collection

from fastapi import Request

from provisioner.api.problems import Problem
from provisioner.tokens.service import token_identity


def bearer_identity(request: Request, expected: str = "<token>") -> tuple[str, set[str]]:
    """The name and scopes of the request's bearer token; 401 when it is missing, unknown or
    revoked (``expected``: what the hint asks for)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise Problem(401, "Unauthorized", f"send Authorization: Bearer {expected}",
                      headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.db.read() as session:  # a read: no write slot taken
        found = token_identity(session, header[7:].strip())
    if found is None:
        raise Problem(401, "Unauthorized", "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return found


def require_scope(request: Request, scope: str | Collection[str]) -> str:
    """Check the bearer token holds ``scope`` (or one of several; ``admin`` holds every one) and
    return the token's name: who acts, as decisions record it."""
    name, scopes = bearer_identity(request)
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
