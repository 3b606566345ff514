"""Bearer-token authentication and scopes (RFC 7644 §2, RFC 6750).

Tokens are issued with ``provisioner scim token create NAME --scope read|read-write`` and
checked with :func:`provisioner.tokens.service.token_scopes`: a missing, unknown or revoked
token is 401; a token without the scope an operation needs is 403.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from scim2_models import ForbiddenException, UnauthorizedException

from provisioner.api.deps import SessionDep
from provisioner.tokens.service import token_scopes

SCOPE_READ = "scim:read"
SCOPE_WRITE = "scim:write"


class TokenScope(StrEnum):
    """What ``token create --scope`` accepts."""

    read = "read"
    read_write = "read-write"

    def scopes(self) -> set[str]:
        return {SCOPE_READ} if self is TokenScope.read else {SCOPE_READ, SCOPE_WRITE}


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedException(detail="A bearer token is required")
    return token.strip()


def _scopes(request: Request, session: SessionDep) -> set[str]:
    scopes = token_scopes(session, bearer_token(request))
    if scopes is None:
        raise UnauthorizedException(
            detail="The bearer token is unknown or revoked", invalid_token=True
        )
    request.state.scim_scopes = scopes
    return scopes


def require_read(scopes: Annotated[set[str], Depends(_scopes)]) -> None:
    """Reads need ``scim:read`` (a read-write token has it too)."""
    if not scopes & {SCOPE_READ, SCOPE_WRITE}:
        raise ForbiddenException(detail="The token has no SCIM scope")


def require_write(scopes: Annotated[set[str], Depends(_scopes)]) -> None:
    """Creates, replaces, patches, deletes and Bulk need ``scim:write``."""
    if SCOPE_WRITE not in scopes:
        raise ForbiddenException(detail="The token is read-only: scim:write is required")


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
