"""Issue, check and revoke API tokens. A token is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.clock import utcnow
from provisioner.tokens.models import ApiToken

# Roles: admin (everything), approver (decides approvals, SoD exceptions, holds, rollouts), auditor (evidence
# and reads), viewer (reads only); SCIM clients: scim:read, scim:write; an HR source's bulk uploads:
# hr:<source> (provisioner hr-sources token issue SOURCE; admin does not hold it).
ROLES = ("admin", "approver", "auditor", "viewer")
SCOPES = {*ROLES, "scim:read", "scim:write"}
HR_SOURCE_PREFIX = "hr:"
_HR_SOURCE_SCOPE = re.compile(r"^hr:[a-z0-9][a-z0-9_.-]{0,62}$")  # the HR source name (hr_sources/declarations.py)


def hr_source_scope(source: str) -> str:
    """The scope of an HR source's bearer tokens: ``hr:<source>``."""
    return HR_SOURCE_PREFIX + source


def _known_scope(scope: str) -> bool:
    return scope in SCOPES or bool(_HR_SOURCE_SCOPE.match(scope))


class TokenError(ValueError):
    pass


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: set[str]) -> str:
    unknown = {s for s in scopes if not _known_scope(s)}
    if unknown:
        raise TokenError(f"unknown scope(s) {sorted(unknown)}; known: {sorted(SCOPES)} and hr:<source>")
    existing = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if existing is not None and existing.revoked_at is None:
        raise TokenError(f"a token named {name!r} exists; revoke it first")
    if existing is not None:
        session.delete(existing)
        session.flush()
    token = "pvt_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(name=name, token_sha256=_digest(token), scopes=" ".join(sorted(scopes)),
                 created_at=utcnow())
    )
    return token


def revoke_token(session: Session, name: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None or row.revoked_at is not None:
        raise TokenError(f"no active token named {name!r}")
    row.revoked_at = utcnow()


def token_scopes(session: Session, presented: str) -> set[str] | None:
    """The scopes of a presented bearer token, or None if it is unknown or revoked."""
    found = token_identity(session, presented)
    return found[1] if found is not None else None


def token_identity(session: Session, presented: str) -> tuple[str, set[str]] | None:
    """The name (who acts, as decisions record it) and scopes of a presented bearer token, or
    None if it is unknown or revoked."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _digest(presented)))
    if row is None or row.revoked_at is not None:
        return None
    return row.name, set(row.scopes.split())


def scopes_of(session: Session, name: str) -> set[str] | None:
    """The scopes of the token named ``name`` (revoked or not), or None if there is none."""
    row = session.scalar(select(ApiToken).where(ApiToken.name == name))
    return set(row.scopes.split()) if row is not None else None
