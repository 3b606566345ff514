"""Console sign-in with Microsoft Entra ID: the OpenID Connect authorization code flow with PKCE
through msal, and the ID token validated here (msal 1.38+ no longer validates it).

``begin()`` starts a sign-in: redirect the browser to the ``auth_uri`` and keep the flow dict (JSON)
in the server-side session. ``finish(flow, query_params)`` takes the callback's query, redeems the
code (msal checks ``state``), validates the ID token (RS256 signature against the authority's JWKS,
``iss``, ``aud``, ``nonce``, ``exp``) and maps its ``roles`` claim to console roles. Every failure is a
:class:`SignInError` whose message can be shown to the person signing in.

The same code path serves a real tenant (authority ``https://login.microsoftonline.com/{tenant}``)
and the sandbox authority (its URL and its CA file); msal reads
``{authority}/v2.0/.well-known/openid-configuration`` (``instance_discovery=False``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import ssl
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The callback is a GET (response_mode=query): the console's session cookie is SameSite, so a
# cross-site form_post from the authority would arrive without it. msal warns about query.
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended", category=UserWarning)

CONSOLE_ROLES = ("admin", "approver", "auditor", "viewer")
CLOCK_LEEWAY_SECONDS = 120
# A token naming an unknown key id re-reads the JWKS (key rollover), at most this often.
JWKS_MIN_REFRESH_SECONDS = 30.0


class SignInError(Exception):
    """A sign-in refused or failed; the message says why, without secrets or tokens."""


class SignInNotConfigured(SignInError):
    """The settings lack what Entra sign-in needs."""


@dataclass(frozen=True)
class SignedIn:
    """Who signed in: display name, username (preferred_username), console roles (in
    :data:`CONSOLE_ROLES` order), their object id and tenant id."""

    name: str
    username: str
    roles: tuple[str, ...]
    oid: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class SignInConfig:
    authority: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    client_certificate_pem: str | None = field(default=None, repr=False)  # private key + certificate
    redirect_uri: str = ""
    ca_file: Path | None = None
    role_map: Mapping[str, str] = field(default_factory=lambda: {r: r for r in CONSOLE_ROLES})
    scopes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> SignInConfig:
        """From :class:`provisioner.settings.Settings`; names the missing variables if any."""
        missing = [name for name, value in (("PROVISIONER_CONSOLE_OIDC_AUTHORITY", settings.console_oidc_authority),
                                            ("PROVISIONER_CONSOLE_OIDC_CLIENT_ID", settings.console_oidc_client_id),
                                            ("PROVISIONER_CONSOLE_OIDC_REDIRECT_URI", settings.console_oidc_redirect_uri))
                   if not value]
        if missing:
            raise SignInNotConfigured(f"Entra sign-in is not configured: set {', '.join(missing)}")
        certificate_file = settings.console_oidc_client_certificate_file
        try:
            secret = settings.console_oidc_secret()
            certificate = certificate_file.read_text() if certificate_file is not None else None
        except OSError as exc:
            raise SignInNotConfigured(f"cannot read the console's client credential file {exc.filename}: "
                                      f"{exc.strerror}") from None
        if (secret is None) == (certificate_file is None):
            raise SignInNotConfigured("Entra sign-in needs one client credential: set PROVISIONER_CONSOLE_OIDC_CLIENT_SECRET "
                                      "(or ..._CLIENT_SECRET_FILE) or PROVISIONER_CONSOLE_OIDC_CLIENT_CERTIFICATE_FILE, "
                                      "not both")
        bad = sorted({v for v in settings.console_oidc_roles.values() if v not in CONSOLE_ROLES})
        if bad:
            raise SignInNotConfigured(f"PROVISIONER_CONSOLE_OIDC_ROLES maps to unknown console role(s) {bad}: "
                                      f"use {', '.join(CONSOLE_ROLES)}")
        return cls(authority=settings.console_oidc_authority, client_id=settings.console_oidc_client_id,
                   client_secret=secret, client_certificate_pem=certificate,
                   redirect_uri=settings.console_oidc_redirect_uri,
                   ca_file=settings.console_oidc_ca_file, role_map=dict(settings.console_oidc_roles))

    @property
    def authority_base(self) -> str:
        """The authority without a trailing ``/v2.0`` (msal appends it for discovery)."""
        base = self.authority.rstrip("/")
        return base[: -len("/v2.0")] if base.endswith("/v2.0") else base


def nonce_hash(nonce: str) -> str:
    """What msal sends as ``nonce`` (and what comes back in the ID token) for a flow's nonce."""
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def console_roles(claims: Mapping[str, Any], role_map: Mapping[str, str]) -> tuple[str, ...]:
    """The console roles granted by the token's ``roles`` claim; unknown values are ignored."""
    granted = claims.get("roles") or []
    if isinstance(granted, str):
        granted = [granted]
    mapped = {role_map.get(str(value)) for value in granted}
    return tuple(role for role in CONSOLE_ROLES if role in mapped)


class EntraSignIn:
    """One relying party (the console's app registration). Thread-safe; discovery and the JWKS
    are fetched on first use and the JWKS again when a token names an unknown key id (at most
    every JWKS_MIN_REFRESH_SECONDS). msal keeps no tokens (the console needs none)."""

    def __init__(self, config: SignInConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self._timeout = timeout
        self._lock = threading.Lock()
        self._msal: Any = None
        self._discovery: dict | None = None
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched = float("-inf")

    # -- the flow ----------------------------------------------------------------------------

    def begin(self, *, login_hint: str | None = None, prompt: str | None = None) -> tuple[str, dict]:
        """Start a sign-in: ``(auth_uri, flow)``. Redirect to ``auth_uri``; keep ``flow`` (a JSON-able
        dict holding state, nonce and the PKCE verifier) in the session for :meth:`finish`."""
        try:
            flow = self._app().initiate_auth_code_flow(
                scopes=list(self.config.scopes), redirect_uri=self.config.redirect_uri,
                login_hint=login_hint, prompt=prompt, response_mode="query")
        except ValueError as exc:
            raise SignInError(f"cannot start the sign-in: {exc}") from None
        return flow["auth_uri"], flow

    def finish(self, flow: Mapping[str, Any], query_params: Mapping[str, str]) -> SignedIn:
        """Complete a sign-in from the callback's query parameters."""
        params = dict(query_params)
        if "error" in params:
            raise SignInError(f"the identity provider refused the sign-in: {params['error']}"
                              + (f" ({params['error_description']})" if params.get("error_description") else ""))
        if not flow or "state" not in flow or "nonce" not in flow:
            raise SignInError("no sign-in is under way in this session; start again")
        try:
            result = self._app().acquire_token_by_auth_code_flow(dict(flow), params)
        except OSError as exc:  # requests' errors: the token endpoint is unreachable
            raise SignInError(f"cannot reach the identity provider's token endpoint ({exc.__class__.__name__}); "
                              "try again") from None
        except (ValueError, RuntimeError) as exc:  # msal: state (ValueError), nonce (RuntimeError)
            reason = "state" if "state" in str(exc).lower() else "nonce" if "nonce" in str(exc).lower() else "response"
            raise SignInError(f"the sign-in response does not belong to this sign-in ({reason} mismatch); start again") from None
        if "error" in result:
            raise SignInError(f"the code could not be redeemed: {result['error']}"
                              + (f" ({result.get('error_description', '').splitlines()[0]})"
                                 if result.get("error_description") else ""))
        id_token = result.get("id_token")
        if not id_token:
            raise SignInError("the identity provider returned no ID token")
        claims = self.validate_id_token(id_token, nonce=nonce_hash(flow["nonce"]))
        roles = console_roles(claims, self.config.role_map)
        username = str(claims.get("preferred_username") or claims.get("upn") or claims.get("email") or claims["sub"])
        if not roles:
            raise SignInError(f"{username} has no console role: an administrator must assign them one of the "
                              f"app roles {', '.join(CONSOLE_ROLES)} in the console's app registration")
        return SignedIn(name=str(claims.get("name") or username), username=username, roles=roles,
                        oid=claims.get("oid"), tenant_id=claims.get("tid"))

    # -- ID token validation -----------------------------------------------------------------

    def validate_id_token(self, id_token: str, *, nonce: str) -> dict:
        """The token's claims once its RS256 signature (JWKS), ``iss``, ``aud``, ``nonce``, ``exp``
        and ``iat`` check out; :class:`SignInError` otherwise."""
        import jwt

        try:
            header = jwt.get_unverified_header(id_token)
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise SignInError("the ID token is malformed") from None
        if header.get("alg") != "RS256":
            raise SignInError(f"the ID token is signed with {header.get('alg')!r}, not RS256")
        key = self._signing_key(str(header.get("kid", "")))
        issuer = str(self._discovered()["issuer"])
        if "{tenantid}" in issuer:  # multi-tenant authorities (organizations, common)
            issuer = issuer.replace("{tenantid}", str(unverified.get("tid", "")))
        try:
            claims = jwt.decode(id_token, key, algorithms=["RS256"], audience=self.config.client_id,
                                issuer=issuer, leeway=CLOCK_LEEWAY_SECONDS,
                                options={"require": ["iss", "aud", "exp", "iat", "sub"]})
        except jwt.ExpiredSignatureError:
            raise SignInError("the ID token has expired; sign in again") from None
        except jwt.InvalidAudienceError:
            raise SignInError("the ID token was issued for another application (aud)") from None
        except jwt.InvalidIssuerError:
            raise SignInError("the ID token was issued by another authority (iss)") from None
        except jwt.InvalidSignatureError:
            raise SignInError("the ID token's signature does not verify against the authority's keys") from None
        except jwt.PyJWTError as exc:
            raise SignInError(f"the ID token is invalid: {exc}") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInError("the ID token's nonce does not match this sign-in; start again")
        return claims

    def _signing_key(self, kid: str) -> Any:
        from jwt import PyJWK

        with self._lock:
            known = self._jwks.get(kid)
        if known is None and time.monotonic() - self._jwks_fetched > JWKS_MIN_REFRESH_SECONDS:
            self._refresh_jwks()
            with self._lock:
                known = self._jwks.get(kid)
        if known is None:
            raise SignInError("the ID token is signed with a key the authority does not publish")
        return PyJWK(known).key

    def _refresh_jwks(self) -> None:
        document = self._get_json(str(self._discovered()["jwks_uri"]))
        keys = {str(k.get("kid", "")): k for k in document.get("keys", []) if k.get("kty") == "RSA"}
        with self._lock:
            self._jwks = keys
            self._jwks_fetched = time.monotonic()

    def _discovered(self) -> dict:
        if self._discovery is None:
            url = f"{self.config.authority_base}/v2.0/.well-known/openid-configuration"
            document = self._get_json(url)
            if "issuer" not in document or "jwks_uri" not in document:
                raise SignInError(f"the authority's discovery document at {url} has no issuer or jwks_uri")
            self._discovery = document
        return self._discovery

    def _get_json(self, url: str) -> dict:
        import httpx

        verify: Any = ssl.create_default_context(cafile=str(self.config.ca_file)) if self.config.ca_file else True
        try:
            response = httpx.get(url, verify=verify, timeout=self._timeout)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInError(f"cannot read {url}: {exc.__class__.__name__}") from None

    def _app(self) -> Any:
        with self._lock:
            if self._msal is None:
                import msal

                try:
                    self._msal = msal.ConfidentialClientApplication(
                        self.config.client_id, client_credential=_credential(self.config),
                        authority=self.config.authority_base, instance_discovery=False,
                        http_client=_http_session(self.config.ca_file, self._timeout),
                        token_cache=_no_token_cache())
                except OSError as exc:  # requests' errors: discovery unreachable
                    raise SignInError(f"cannot reach the authority {self.config.authority_base} "
                                      f"({exc.__class__.__name__})") from None
                except ValueError as exc:
                    raise SignInError(f"cannot use the authority {self.config.authority_base}: "
                                      f"{str(exc).splitlines()[0]}") from None
            return self._msal


def _credential(config: SignInConfig) -> Any:
    """msal's client_credential: the secret, or the certificate's private key and certificate
    (msal then signs a client assertion, PS256 with the certificate's SHA-256 thumbprint)."""
    if config.client_certificate_pem is None:
        return config.client_secret
    text = config.client_certificate_pem
    key = re.search(r"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.+?-----END (?:RSA |EC )?PRIVATE KEY-----", text, re.S)
    certificate = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    if key is None or certificate is None:
        raise SignInNotConfigured("the client certificate file needs an unencrypted PEM private key and its "
                                  "PEM certificate")
    return {"private_key": key.group(0), "public_certificate": certificate.group(0)}


def _no_token_cache() -> Any:
    """A token cache that keeps nothing: the console needs who signed in, not their tokens (msal's
    default in-memory cache would hold every person's tokens for the life of the process)."""
    import msal

    class _Forgetful(msal.TokenCache):
        def add(self, event, **kwargs):  # type: ignore[override]
            return None

    return _Forgetful()


def _http_session(ca_file: Path | None, timeout: float) -> Any:
    """msal's HTTP client: a requests session that trusts ``ca_file`` (when given) even where
    REQUESTS_CA_BUNDLE is set (requests lets that variable override a session's ``verify``), with a
    default timeout; proxies from the environment still apply."""
    import requests

    class _Session(requests.Session):
        def request(self, method, url, **kwargs):  # type: ignore[override]
            kwargs.setdefault("verify", self.verify)
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, **kwargs)

    session = _Session()
    session.verify = str(ca_file) if ca_file else True
    return session


_default: EntraSignIn | None = None
_default_lock = threading.Lock()


def from_settings(settings: Any = None) -> EntraSignIn:
    """The relying party configured by the settings (one per process)."""
    global _default
    with _default_lock:
        if _default is None:
            if settings is None:
                from provisioner.settings import get_settings

                settings = get_settings()
            _default = EntraSignIn(SignInConfig.from_settings(settings))
        return _default


def begin(*, login_hint: str | None = None) -> tuple[str, dict]:
    """:meth:`EntraSignIn.begin` with the configured relying party."""
    return from_settings().begin(login_hint=login_hint)


def finish(flow: Mapping[str, Any], query_params: Mapping[str, str]) -> SignedIn:
    """:meth:`EntraSignIn.finish` with the configured relying party."""
    return from_settings().finish(flow, query_params)
