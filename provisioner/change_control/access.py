"""Who is asking: the bearer token's name, checked for a scope (change-control decisions are
recorded with the name of the token that made them)."""

from __future__ import annotations

import hashlib

from fastapi import Request
from sqlalchemy import select

from provisioner.api.problems import Problem
from provisioner.tokens.models import ApiToken

READ_SCOPES = ("viewer", "auditor", "approver")  # lists and diffs
DECIDE_SCOPES = ("approver",)  # release, cancel, approve, reject


def principal(request: Request, scopes: tuple[str, ...]) -> str:
    """``token:<name>`` of a token holding one of ``scopes`` (or ``admin``); 401/403 otherwise."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    with request.app.state.db.transaction() as session:
        row = session.execute(select(ApiToken.name, ApiToken.scopes, ApiToken.revoked_at)
                              .where(ApiToken.token_sha256 == digest)).first()
    if row is None or row.revoked_at is not None:
        raise Problem(401, "Unauthorized", "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    held = set(row.scopes.split())
    if "admin" not in held and not held.intersection(scopes):
        raise Problem(403, "Forbidden", f"this token lacks the {' or '.join(repr(s) for s in scopes)} scope")
    return f"token:{row.name}"


def reader(request: Request) -> str:
    return principal(request, READ_SCOPES)


def approver(request: Request) -> str:
    return principal(request, DECIDE_SCOPES)
