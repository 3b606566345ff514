"""Bearer-token authentication and scopes (RFC 7644 §2, RFC 6750).

Tokens are issued with ``provisioner scim token create NAME --scope read|read-write`` and
checked with :func:`provisioner.tokens.service.token_scopes`: a missing, unknown or revoked
token is 401; a token without the scope an operation needs is 403.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from scim2_models import ForbiddenException, UnauthorizedException
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from provisioner.tokens.models import ApiToken
from provisioner.tokens.scopes import SCOPE_READ, SCOPE_WRITE

# (TokenScope, what `--scope` accepts, is in provisioner.tokens.scopes: the CLI loads it without all this.)


class Access(StrEnum):
    """What an operation needs: reads (GET, ``.search``) or writes (everything else)."""

    read = "read"
    write = "write"


def bearer_token_or_none(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, None without one."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or 401."""
    token = bearer_token_or_none(authorization)
    if token is None:
        raise UnauthorizedException(detail="A bearer token is required")
    return token


def token_digest(token: str) -> str:
    """A token as tokens are stored: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


_SCOPES_OF_TOKEN = select(ApiToken.scopes).where(
    ApiToken.token_sha256 == bindparam("digest"), ApiToken.revoked_at.is_(None)
)


def token_scopes(session: Session, presented: str) -> set[str] | None:
    """The scopes of an active token, as :func:`provisioner.tokens.service.token_scopes`
    (tokens are stored as their SHA-256), in one pre-built Core query: it runs on every SCIM
    request, and loading the ORM row costs more than the lookup."""
    scopes = session.connection().scalar(_SCOPES_OF_TOKEN, {"digest": token_digest(presented)})
    return None if scopes is None else set(scopes.split())


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
