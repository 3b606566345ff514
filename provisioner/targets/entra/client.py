"""Build the msgraph-sdk client for one Entra target.

The stack, outermost first::

    GraphServiceClient -> GraphRequestAdapter (auth: bearer token from the credential)
      -> kiota/Graph middleware (redirect, retry [disabled], url replace, telemetry, ...)
      -> RecordingTransport (counts, times and logs each call on the wire)
      -> DryRunTransport (only when dry_run: refuses writes)
      -> the real transport (httpx.AsyncHTTPTransport, or an injected one such as
         httpx.ASGITransport(app=sandbox.app) for in-process tests)

Quirks handled (graph.md):

- ``request_adapter.base_url`` is set from ``config.graph_url`` without a trailing slash;
  plain http works only for localhost, 127.0.0.1 and ::1.
- Scopes are passed explicitly (``https://graph.microsoft.com/.default``); otherwise the
  SDK derives a scope from the request host, which is wrong for a sandbox or proxy.
- The SDK's retry middleware retries 429/503/504 up to 3 times by default, for every
  method. Back-off is owned once, by the service's queue, so it is configured with
  ``max_retries=0`` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.graph_request_adapter import options as SDK_DEFAULT_OPTIONS
from msgraph_core import GraphClientFactory

from provisioner.targets.config import EntraTarget
from provisioner.targets.entra.credentials import GRAPH_SCOPE
from provisioner.targets.transport import DryRunTransport, RecordingTransport

GRAPH_SCOPES = [GRAPH_SCOPE]
REQUEST_TIMEOUT = httpx.Timeout(100.0, connect=30.0)  # kiota's own defaults


@dataclass(slots=True)
class GraphClient:
    """Everything built for one target; ``aclose()`` releases the HTTP pool."""

    client: GraphServiceClient
    adapter: GraphRequestAdapter
    http: httpx.AsyncClient
    recorder: RecordingTransport
    base_url: str
    dry_run: bool

    async def aclose(self) -> None:
        await self.http.aclose()


def no_retry_option() -> RetryHandlerOption:
    """The SDK retry handler, told never to retry (the queue owns back-off)."""
    return RetryHandlerOption(delay=0.0, max_retries=0, should_retry=False)


def default_transport(concurrency: int) -> httpx.AsyncBaseTransport:
    """A pooled HTTP transport for a real tenant (HTTP/2 when ``h2`` is installed)."""
    try:
        import h2  # noqa: F401

        http2 = True
    except ImportError:  # pragma: no cover
        http2 = False
    limits = httpx.Limits(max_connections=max(4, concurrency * 2), max_keepalive_connections=max(2, concurrency))
    return httpx.AsyncHTTPTransport(http2=http2, limits=limits, retries=0)


def build_graph_client(
    config: EntraTarget,
    credential: Any,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    dry_run: bool = False,
) -> GraphClient:
    """A ``GraphServiceClient`` for ``config`` whose calls go through the recording stack."""
    base_url = config.graph_url.rstrip("/")
    inner = transport if transport is not None else default_transport(config.throttle.concurrency)
    if dry_run:
        inner = DryRunTransport(inner)
    recorder = RecordingTransport(inner, config.name)

    options: dict[str, Any] = dict(SDK_DEFAULT_OPTIONS)
    options[RetryHandlerOption.get_key()] = no_retry_option()
    http = httpx.AsyncClient(transport=recorder, timeout=REQUEST_TIMEOUT, base_url=base_url)
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)

    auth = AzureIdentityAuthenticationProvider(credential, scopes=list(GRAPH_SCOPES))
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = base_url
    client = GraphServiceClient(request_adapter=adapter)
    return GraphClient(client, adapter, http, recorder, base_url, dry_run)
