"""Who is asking, for change control over HTTP: ``token:<name>`` (``actors``) of a bearer token
holding a read or a decision scope (change-control decisions are recorded with it). The check
itself is the API's one (:func:`provisioner.api.auth.require_scope`)."""

from __future__ import annotations

from fastapi import Request

from provisioner.api.auth import require_scope
from provisioner.change_control.actors import TOKEN, actor

READ_SCOPES = ("viewer", "auditor", "approver")  # lists and diffs
DECIDE_SCOPES = ("approver",)  # release, cancel, approve, reject


def principal(request: Request, scopes: tuple[str, ...]) -> str:
    """``token:<name>`` of a token holding one of ``scopes`` (or ``admin``); 401/403 otherwise."""
    return actor(TOKEN, require_scope(request, scopes))


def reader(request: Request) -> str:
    return principal(request, READ_SCOPES)


def approver(request: Request) -> str:
    return principal(request, DECIDE_SCOPES)
