"""Bearer-token authentication and scopes (RFC 7644 §2, RFC 6750).

Tokens are issued with ``provisioner scim token create NAME --scope read|read-write`` and
checked with :func:`provisioner.tokens.service.token_scopes`: a missing, unknown or revoked
token is 401; a token without the scope an operation needs is 403.
"""

from __future__ import annotations

from enum import StrEnum

from scim2_models import ForbiddenException, UnauthorizedException
from sqlalchemy.orm import Session

from provisioner.tokens.service import token_scopes

SCOPE_READ = "scim:read"
SCOPE_WRITE = "scim:write"


class TokenScope(StrEnum):
    """What ``token create --scope`` accepts."""

    read = "read"
    read_write = "read-write"

    def scopes(self) -> set[str]:
        """The token scopes this choice grants."""
        return {SCOPE_READ} if self is TokenScope.read else {SCOPE_READ, SCOPE_WRITE}


class Access(StrEnum):
    """What an operation needs: reads (GET, ``.search``) or writes (everything else)."""

    read = "read"
    write = "write"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or 401."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedException(detail="A bearer token is required")
    return token.strip()


def authorize(session: Session, authorization: str | None, access: Access) -> set[str]:
    """Check the request's token (401) and its scope for the operation (403)."""
    scopes = token_scopes(session, bearer_token(authorization))
    if scopes is None:
        raise UnauthorizedException(
            detail="The bearer token is unknown or revoked", invalid_token=True
        )
    if access is Access.write and SCOPE_WRITE not in scopes:
        raise ForbiddenException(detail="The token is read-only: scim:write is required")
    if not scopes & {SCOPE_READ, SCOPE_WRITE}:
        raise ForbiddenException(detail="The token has no SCIM scope")
    return scopes
