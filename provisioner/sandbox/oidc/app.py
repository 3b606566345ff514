"""The sandbox authority as a Starlette app, with Entra ID's v2.0 paths under ``/{tenant}``:

- ``/{tenant}/v2.0/.well-known/openid-configuration`` (what msal reads for ``authority=`` with
  ``instance_discovery=False``) and ``/{tenant}/.well-known/openid-configuration``;
- ``/{tenant}/oauth2/v2.0/authorize``: GET shows the user picker, POST (a picked user) redirects
  to the registered redirect URI with ``code`` and ``state``;
- ``/{tenant}/oauth2/v2.0/token``: the authorization_code grant, PKCE S256 required;
- ``/{tenant}/discovery/v2.0/keys``: the JWKS.

``faults`` lets a test make the authority mis-issue ID tokens (claims overridden, a tampered
payload) to prove the relying party refuses them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from provisioner.sandbox.oidc.keys import SigningKey
from provisioner.sandbox.oidc.picker import error_page, picker_page
from provisioner.sandbox.oidc.users import DEFAULT_USERS, SandboxClient, SandboxUser

CODE_SECONDS = 300
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class IdTokenFaults:
    """How the next ID tokens are mis-issued: ``claims`` override the real ones (e.g. ``aud``,
    ``exp``, ``nonce``); ``tamper`` changes the payload after signing."""

    claims: dict = field(default_factory=dict)
    tamper: bool = False


@dataclass(frozen=True)
class _Pending:
    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    scope: str
    code_challenge: str
    created: float


@dataclass(frozen=True)
class _Grant:
    pending: _Pending
    user: SandboxUser
    expires: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store"})


class OidcAuthority:
    """The authority's state: tenant, users, app registrations, signing key, pending requests
    and issued codes (one use each). ``app`` is the ASGI app."""

    def __init__(self, *, tenant: str = "sandbox", users: tuple[SandboxUser, ...] = DEFAULT_USERS,
                 clients: tuple[SandboxClient, ...] = (), token_seconds: int = 3600) -> None:
        self.tenant = tenant
        self.tenant_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-oidc:{tenant}"))
        self.users = {u.username.lower(): u for u in users}
        self.clients = {c.client_id: c for c in clients}
        self.token_seconds = token_seconds
        self.key = SigningKey()
        self.faults = IdTokenFaults()
        self.base_url: str | None = None  # set by the server; else taken from each request
        self._pending: dict[str, _Pending] = {}
        self._codes: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery),
            Route("/{tenant}/.well-known/openid-configuration", self._discovery),
            Route("/{tenant}/oauth2/v2.0/authorize", self._authorize, methods=["GET", "POST"]),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            Route("/{tenant}/discovery/v2.0/keys", self._keys),
        ])

    def add_client(self, client: SandboxClient) -> None:
        self.clients[client.client_id] = client

    # -- URLs --------------------------------------------------------------------------------

    def _root(self, request: Request) -> str:
        return self.base_url or f"{request.url.scheme}://{request.url.netloc}"

    def authority_url(self, root: str) -> str:
        """What to give msal as ``authority=`` (with ``instance_discovery=False``)."""
        return f"{root}/{self.tenant}"

    def issuer(self, root: str) -> str:
        return f"{root}/{self.tenant}/v2.0"

    def _known_tenant(self, request: Request) -> bool:
        return request.path_params["tenant"] in (self.tenant, self.tenant_id)

    # -- endpoints ---------------------------------------------------------------------------

    async def _discovery(self, request: Request) -> Response:
        if not self._known_tenant(request):
            return _oauth_error("invalid_tenant", "no such tenant", 400)
        root, t = self._root(request), self.tenant
        return JSONResponse({
            "issuer": self.issuer(root),
            "authorization_endpoint": f"{root}/{t}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/{t}/oauth2/v2.0/token",
            "jwks_uri": f"{root}/{t}/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "oid", "tid", "name",
                                 "preferred_username", "roles"],
            "tenant_region_scope": "EU",
        })

    async def _keys(self, request: Request) -> Response:
        if not self._known_tenant(request):
            return _oauth_error("invalid_tenant", "no such tenant", 400)
        return JSONResponse({"keys": [self.key.public_jwk()]})

    async def _authorize(self, request: Request) -> Response:
        if not self._known_tenant(request):
            return HTMLResponse(error_page("No such tenant."), status_code=404)
        if request.method == "POST":
            return await self._picked(request)
        q = request.query_params
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            return HTMLResponse(error_page("Unknown client_id: no app registration has it."), status_code=400)
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return HTMLResponse(error_page("redirect_uri is not registered for this application."), status_code=400)

        def back(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description}
            if q.get("state") is not None:
                params["state"] = q["state"]
            return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

        if q.get("response_type") != "code":
            return back("unsupported_response_type", "only response_type=code is supported")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return back("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        if "openid" not in q.get("scope", "").split():
            return back("invalid_scope", "the openid scope is required")
        request_id = secrets.token_urlsafe(24)
        with self._lock:
            self._pending[request_id] = _Pending(client.client_id, redirect_uri, q.get("state"), q.get("nonce"),
                                                 q.get("scope", ""), q["code_challenge"], time.time())
        return HTMLResponse(picker_page(action=str(request.url.path), request_id=request_id,
                                        client_id=client.client_id, users=tuple(self.users.values())),
                            headers={"Cache-Control": "no-store"})

    async def _picked(self, request: Request) -> Response:
        form = await request.form()
        with self._lock:
            pending = self._pending.pop(str(form.get("request_id", "")), None)
        if pending is None or time.time() - pending.created > CODE_SECONDS:
            return HTMLResponse(error_page("This sign-in request is unknown or expired; start again."), status_code=400)
        user = self.users.get(str(form.get("username", "")).lower())
        if user is None:
            return HTMLResponse(error_page("No such account."), status_code=400)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Grant(pending, user, time.time() + CODE_SECONDS)
        params = {"code": code}
        if pending.state is not None:
            params["state"] = pending.state
        return RedirectResponse(f"{pending.redirect_uri}?{urlencode(params)}", status_code=303)

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type", "only authorization_code is supported")
        client_id, secret = str(form.get("client_id", "")), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return _oauth_error("invalid_client", "malformed basic credentials", 401)
        assertion = form.get("client_assertion")
        if assertion and form.get("client_assertion_type") != JWT_BEARER:
            return _oauth_error("invalid_client", "unsupported client_assertion_type", 401)
        client = self.clients.get(client_id)
        if client is None:
            return _oauth_error("invalid_client", "unknown client_id", 401)
        refused = self._client_refused(request, client, str(secret) if secret is not None else None,
                                       str(assertion) if assertion else None)
        if refused:
            return _oauth_error("invalid_client", refused, 401)
        with self._lock:
            grant = self._codes.pop(str(form.get("code", "")), None)  # one use, even when refused
        if grant is None or grant.expires < time.time():
            return _oauth_error("invalid_grant", "the authorization code is unknown, used or expired")
        if grant.pending.client_id != client_id:
            return _oauth_error("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant.pending.redirect_uri:
            return _oauth_error("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = str(form.get("code_verifier", ""))
        if not verifier or not hmac.compare_digest(s256(verifier), grant.pending.code_challenge):
            return _oauth_error("invalid_grant", "PKCE verification failed: code_verifier does not match the code_challenge")
        root = self._root(request)
        return JSONResponse({
            "token_type": "Bearer",
            "scope": grant.pending.scope,
            "expires_in": self.token_seconds,
            "ext_expires_in": self.token_seconds,
            "access_token": self._access_token(root, grant),
            "id_token": self._id_token(root, grant),
        }, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _client_refused(self, request: Request, client: SandboxClient, secret: str | None,
                        assertion: str | None) -> str | None:
        """Why the client's authentication fails, or None: a certificate-signed assertion
        (PS256/RS256, iss = sub = client id, aud = this token endpoint) or the secret."""
        if client.secret is None and client.certificate_pem is None:
            return None
        if assertion is not None:
            if client.certificate_pem is None:
                return "no certificate is registered for this client"
            certificate = x509.load_pem_x509_certificate(client.certificate_pem.encode())
            try:
                claims = jwt.decode(assertion, certificate.public_key(), algorithms=["PS256", "RS256"],
                                    audience=f"{self._root(request)}{request.url.path}", issuer=client.client_id,
                                    options={"require": ["exp", "iss", "aud", "sub"]})
            except jwt.PyJWTError as exc:
                return f"client assertion refused: {exc}"
            return None if claims["sub"] == client.client_id else "client assertion refused: sub"
        if client.secret is not None and secret is not None and hmac.compare_digest(secret, client.secret):
            return None
        return "client authentication failed"

    # -- tokens ------------------------------------------------------------------------------

    def _sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.key.private_key, algorithm="RS256",
                          headers={"kid": self.key.kid, "typ": "JWT"})

    def _id_token(self, root: str, grant: _Grant) -> str:
        now = int(time.time())
        user = grant.user
        claims = {"iss": self.issuer(root), "aud": grant.pending.client_id, "iat": now, "nbf": now,
                  "exp": now + self.token_seconds, "sub": _b64url(hashlib.sha256(
                      f"{user.oid}:{grant.pending.client_id}".encode()).digest()),
                  "oid": user.oid, "tid": self.tenant_id, "name": user.name,
                  "preferred_username": user.username, "ver": "2.0"}
        if user.roles:
            claims["roles"] = list(user.roles)
        if grant.pending.nonce is not None:
            claims["nonce"] = grant.pending.nonce
        claims.update(self.faults.claims)
        token = self._sign(claims)
        if self.faults.tamper:
            header, _, signature = token.split(".")
            forged = {**claims, "roles": ["admin"]}
            token = ".".join((header, _b64url(json.dumps(forged).encode()), signature))
        return token

    def _access_token(self, root: str, grant: _Grant) -> str:
        now = int(time.time())
        return self._sign({"iss": self.issuer(root), "aud": grant.pending.client_id, "iat": now,
                           "exp": now + self.token_seconds, "oid": grant.user.oid, "tid": self.tenant_id,
                           "scp": grant.pending.scope})
