"""Console sessions: who is signed in, in a signed cookie, with a per-session CSRF token.

The cookie holds the person's name, roles and CSRF token, signed (itsdangerous) with
``console_session_secret`` (settings) or, unset, a random key made when the process starts.
It is HttpOnly, SameSite=Lax and Secure, except when the console is reached over plain http on
localhost (the demo, the tests), where a browser would not send a Secure cookie back.

``sign_in`` is generic: the API-token form calls it, and so can any other sign-in (an OpenID
Connect callback) once it has established who the person is and their roles.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from provisioner.settings import Settings

COOKIE = "provisioner_console"
COOKIE_PATH = "/console"
ROLES = ("admin", "approver", "auditor", "viewer")  # the token scopes the console knows
DECIDERS = {"admin", "approver"}
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
_SALT = "provisioner.console.session"


@dataclass(frozen=True)
class ConsoleUser:
    """A signed-in person: their name (recorded in the audit trail) and roles."""

    name: str
    roles: frozenset[str]
    csrf: str = field(default="", compare=False)

    @property
    def can_decide(self) -> bool:
        """Approvers and admins decide (approve, reject, release, replay); others only read."""
        return bool(self.roles & DECIDERS)

    @property
    def actor(self) -> str:
        """How decisions and audit records name this person."""
        return f"console:{self.name}"


@dataclass
class _Keys:
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # one per process
    max_age: int = 8 * 3600


_keys = _Keys()


def configure(settings: Settings) -> None:
    """Take the signing key and session lifetime from settings (random per process when unset)."""
    if settings.console_session_secret is not None:
        _keys.secret = settings.console_session_secret.get_secret_value()
    _keys.max_age = int(settings.console_session_hours * 3600)


def roles_of(scopes: set[str]) -> frozenset[str]:
    """The console roles a token's scopes give (``scim:*`` scopes give none)."""
    return frozenset(scopes) & frozenset(ROLES)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_keys.secret, salt=_SALT)


def _secure(request: Request | None) -> bool:
    if request is None:
        return True
    return not (request.url.scheme == "http" and (request.url.hostname or "") in _LOCAL_HOSTS)


def sign_in(response: Response, user: ConsoleUser, request: Request | None = None) -> ConsoleUser:
    """Start a session for ``user`` on ``response`` (a fresh CSRF token); returns the user with it."""
    if not user.roles:
        raise ValueError("a console user needs at least one role")
    signed_in = ConsoleUser(user.name, frozenset(user.roles), secrets.token_urlsafe(24))
    value = _serializer().dumps({"n": signed_in.name, "r": sorted(signed_in.roles), "c": signed_in.csrf,
                                 "t": int(time.time())})
    response.set_cookie(COOKIE, value, max_age=_keys.max_age, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=_secure(request))
    return signed_in


def sign_out(response: Response, request: Request | None = None) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=_secure(request))


def current_user(request: Request) -> ConsoleUser | None:
    """The signed-in person, or None (no cookie, a bad signature, an expired session)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        data = _serializer().loads(value, max_age=_keys.max_age)
    except BadSignature:  # SignatureExpired is one
        return None
    try:
        return ConsoleUser(str(data["n"]), roles_of(set(data["r"])), str(data["c"]))
    except (KeyError, TypeError):
        return None


PRE_COOKIE = "provisioner_console_signin"  # the sign-in form's CSRF token, before there is a session


def sign_in_form_token(request: Request) -> str:
    """The sign-in form's CSRF token: the same random value in a short-lived cookie
    (:func:`keep_sign_in_form_token`) and the form (double submit), so another site cannot sign a
    browser in under a token of its own."""
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def keep_sign_in_form_token(response: Response, token: str, request: Request) -> None:
    response.set_cookie(PRE_COOKIE, token, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=_secure(request))


def sign_in_form_ok(request: Request, presented: str | None) -> bool:
    expected = request.cookies.get(PRE_COOKIE)
    return bool(presented) and bool(expected) and hmac.compare_digest(expected, presented)


FLOW_COOKIE = "provisioner_console_flow"  # a sign-in under way at an identity provider
FLOW_SECONDS = 600


def keep_flow(response: Response, flow: dict, request: Request | None = None) -> None:
    """Keep a sign-in flow under way (an OpenID Connect flow's state, nonce and PKCE verifier)
    between the redirect to the identity provider and its callback: signed, HttpOnly, ten minutes."""
    value = URLSafeTimedSerializer(_keys.secret, salt=_SALT + ".flow").dumps(flow)
    response.set_cookie(FLOW_COOKIE, value, max_age=FLOW_SECONDS, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=_secure(request))


def take_flow(request: Request, response: Response) -> dict | None:
    """The flow :func:`keep_flow` kept (None: none, tampered or older than ten minutes); it is
    removed from the browser, so a callback is used once."""
    response.delete_cookie(FLOW_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=_secure(request))
    value = request.cookies.get(FLOW_COOKIE)
    if not value:
        return None
    try:
        flow = URLSafeTimedSerializer(_keys.secret, salt=_SALT + ".flow").loads(value, max_age=FLOW_SECONDS)
    except BadSignature:
        return None
    return flow if isinstance(flow, dict) else None


def csrf_ok(user: ConsoleUser, presented: str | None) -> bool:
    return bool(presented) and bool(user.csrf) and hmac.compare_digest(user.csrf, presented)
