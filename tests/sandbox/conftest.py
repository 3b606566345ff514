"""Fixtures that drive the Graph sandbox in-process, through the real msgraph-sdk stack or raw HTTP.

The SDK path is the production one: kiota's middleware pipeline (retry, redirect, telemetry...),
the Azure-identity authentication provider with a static credential, and an httpx client whose
transport is the sandbox's ASGI app, so no socket is opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from provisioner.clock import clock
from provisioner.sandbox.graph.app import GraphSandbox
from provisioner.targets.entra.credentials import StaticTokenCredential

BASE_URL = "http://127.0.0.1/v1.0"
TOKEN = "sandbox-test-token"


SdkFactory = Callable[..., Awaitable[GraphServiceClient]]


@pytest.fixture
def sandbox() -> GraphSandbox:
    """A sandbox without throttling, default page size; the tenant (contoso.com) verified its domain."""
    return GraphSandbox(token=TOKEN, verified_domains=["contoso.com", "example.com"])


@pytest.fixture
async def sdk_for() -> AsyncIterator[SdkFactory]:
    """Builds GraphServiceClients against a given sandbox; ``retries=0`` disables the SDK's
    retry handler so 429s reach the test.
    """
    clients: list[httpx.AsyncClient] = []

    async def build(sb: GraphSandbox, *, retries: int | None = None) -> GraphServiceClient:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sb.app))
        clients.append(http)
        options = {}
        if retries is not None:
            options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=retries)
        http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
        auth = AzureIdentityAuthenticationProvider(
            StaticTokenCredential(TOKEN), scopes=["https://graph.microsoft.com/.default"]
        )
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = BASE_URL
        return GraphServiceClient(request_adapter=adapter)

    yield build
    for http in clients:
        await http.aclose()


@pytest.fixture
async def sdk(sandbox: GraphSandbox, sdk_for: SdkFactory) -> GraphServiceClient:
    """The msgraph-sdk client on ``sandbox``, default middleware (retries on)."""
    return await sdk_for(sandbox)


@pytest.fixture
async def sdk_no_retry(sandbox: GraphSandbox, sdk_for: SdkFactory) -> GraphServiceClient:
    """The msgraph-sdk client on ``sandbox`` with the retry handler off, to observe 429s."""
    return await sdk_for(sandbox, retries=0)


@pytest.fixture
async def raw_http(sandbox: GraphSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx on ``sandbox`` with the bearer token, base URL at /v1.0."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


@pytest.fixture
def moved_clock() -> Iterator[None]:
    """Lets a test move the shared clock; puts it back afterwards."""
    yield None
    clock.reset()
