"""Credentials for Microsoft Graph, built from a target's ``auth`` block.

Production uses the ``azure.identity.aio`` credentials: a synchronous ``get_token`` would
block the event loop while MSAL talks to the token endpoint. Secrets are read through
``SecretRef.read()`` at build time and never stored on the config.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

from azure.core.credentials import AccessToken, AccessTokenInfo

from provisioner.targets.config import EntraAuth

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@runtime_checkable
class AsyncCredential(Protocol):
    """What the SDK's auth provider needs (``azure.core.credentials_async.AsyncTokenCredential``)."""

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken: ...

    async def close(self) -> None: ...


class StaticTokenCredential:
    """A fixed bearer token: for the standalone Graph sandbox and tests, never a tenant.

    Accepts the keywords the SDK always passes (``claims``, ``tenant_id``, ``enable_cae``)
    and hands back the same token for any scope, always valid for another hour.
    """

    def __init__(self, token: str, *, lifetime_s: int = 3600) -> None:
        if not token:
            raise ValueError("a static token credential needs a non-empty token")
        self._token = token
        self._lifetime_s = lifetime_s
        self.requests = 0  # how many tokens were handed out (tests look at it)

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.requests += 1
        return AccessToken(self._token, int(time.time()) + self._lifetime_s)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.requests += 1
        return AccessTokenInfo(self._token, int(time.time()) + self._lifetime_s)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:  # never show the token
        return "StaticTokenCredential(<redacted>)"


def build_credential(auth: EntraAuth) -> Any:
    """An async credential for ``auth.method``; the caller owns it and must ``close()`` it.

    - ``client_secret``: ``azure.identity.aio.ClientSecretCredential`` (secret from its SecretRef)
    - ``certificate``: ``azure.identity.aio.CertificateCredential`` (PEM/PFX path, optional password)
    - ``managed_identity``: ``azure.identity.aio.ManagedIdentityCredential`` (user-assigned when
      ``client_id`` is given)
    - ``static_token``: :class:`StaticTokenCredential` (sandbox only)
    """
    if auth.method == "static_token":
        assert auth.token is not None
        return StaticTokenCredential(auth.token.read())

    from azure.identity import aio as identity_aio

    if auth.method == "client_secret":
        assert auth.tenant_id and auth.client_id and auth.client_secret is not None
        return identity_aio.ClientSecretCredential(
            auth.tenant_id, auth.client_id, auth.client_secret.read()
        )
    if auth.method == "certificate":
        assert auth.tenant_id and auth.client_id and auth.certificate_path is not None
        password = auth.certificate_password.read() if auth.certificate_password else None
        return identity_aio.CertificateCredential(
            auth.tenant_id,
            auth.client_id,
            certificate_path=str(auth.certificate_path),
            password=password,
        )
    if auth.method == "managed_identity":
        if auth.client_id:
            return identity_aio.ManagedIdentityCredential(client_id=auth.client_id)
        return identity_aio.ManagedIdentityCredential()
    raise ValueError(f"unknown auth method {auth.method!r}")
