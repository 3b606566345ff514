"""HTTP to one SCIM app: authentication, the shared recording and dry-run transports, JSON.

Every call goes through ``RecordingTransport`` (one structured record per call, no bodies or
headers) over ``DryRunTransport`` when the connector is a dry run, so a dry run cannot write
whatever code path asks it to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from provisioner.targets.contract import Outcome, TargetError
from provisioner.targets.scim.config import ScimAuth, ScimTarget
from provisioner.targets.transport import DryRunTransport, RecordingTransport

SCIM_JSON = "application/scim+json"  # RFC 7644 §3.1


class OAuth2ClientCredentials(httpx.Auth):
    """Bearer tokens from an OAuth 2.0 token endpoint (RFC 6749 §4.4), cached until a minute
    before they expire and fetched again once after a 401."""

    def __init__(self, auth: ScimAuth, transport: httpx.AsyncBaseTransport | None, timeout: float) -> None:
        assert auth.token_url and auth.client_id and auth.client_secret
        self.config = auth
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self) -> str:
        try:
            secret = self.config.client_secret.read()  # type: ignore[union-attr]
        except (RuntimeError, OSError) as exc:
            raise TargetError(Outcome.STOP, f"client secret: {exc}") from exc
        form = {"grant_type": "client_credentials", "client_id": self.config.client_id, "client_secret": secret}
        if self.config.scope:
            form["scope"] = self.config.scope
        response = await self._client.post(self.config.token_url, data=form)  # type: ignore[arg-type]
        if response.status_code != 200:
            raise TargetError(Outcome.STOP, f"token endpoint answered HTTP {response.status_code}",
                              status_code=response.status_code)
        data = response.json()
        self._token = str(data["access_token"])
        self._expires = time.monotonic() + float(data.get("expires_in", 3600)) - 60
        return self._token

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            if renew or self._token is None or time.monotonic() >= self._expires:
                return await self._fetch()
            return self._token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.token(renew=True)}"
            yield request

    async def aclose(self) -> None:
        await self._client.aclose()


class StaticBearer(httpx.Auth):
    def __init__(self, auth: ScimAuth) -> None:
        assert auth.token is not None
        self._ref = auth.token
        self._value: str | None = None

    def auth_flow(self, request: httpx.Request):  # type: ignore[override]
        if self._value is None:
            try:
                self._value = self._ref.read()
            except (RuntimeError, OSError) as exc:  # unset variable, unreadable file: halt the target
                raise TargetError(Outcome.STOP, f"bearer token: {exc}") from exc
        request.headers["Authorization"] = f"Bearer {self._value}"
        yield request


@dataclass(slots=True)
class Reply:
    status: int | None  # None: no answer (timeout, refused or dropped connection)
    body: Any = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    error: BaseException | None = None


class ScimHttp:
    def __init__(self, config: ScimTarget, *, transport: httpx.AsyncBaseTransport | None = None,
                 dry_run: bool = False) -> None:
        inner = transport or httpx.AsyncHTTPTransport(retries=0)
        self.recorder = RecordingTransport(DryRunTransport(inner) if dry_run else inner, config.name)
        self.dry_run = dry_run
        self._oauth: OAuth2ClientCredentials | None = None
        auth: httpx.Auth | None = None
        if config.auth.method == "bearer":
            auth = StaticBearer(config.auth)
        elif config.auth.method == "oauth2_client_credentials":
            auth = self._oauth = OAuth2ClientCredentials(
                config.auth, RecordingTransport(inner, f"{config.name}:token"), config.timeout_seconds)
        self.client = httpx.AsyncClient(
            base_url=config.base_url + "/", transport=self.recorder, auth=auth,
            timeout=config.timeout_seconds,
            headers={"Accept": SCIM_JSON, "Content-Type": SCIM_JSON})

    async def send(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None, auth: bool = True) -> Reply:
        """One call. Never raises for an HTTP status or a network failure (the caller maps
        them with :mod:`errors`); a dry-run refusal and failed credentials raise
        ``TargetError`` (outcome STOP)."""
        content = orjson.dumps(json) if json is not None else None
        try:
            response = await self.client.request(
                method, path.lstrip("/"), content=content, params=params, headers=headers,
                **({} if auth else {"auth": None}))
        except httpx.HTTPError as exc:  # timeouts, refused and dropped connections
            return Reply(None, error=exc)
        body: Any = None
        if response.content:
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                body = {"detail": response.text[:300]}
        return Reply(response.status_code, body, response.headers)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._oauth is not None:
            await self._oauth.aclose()
