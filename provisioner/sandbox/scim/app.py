"""A real, third-party SCIM 2.0 server (``scim2-server`` from PyPI) as a downstream app.

Served in-process through its ASGI application over its in-memory storage (no socket; the
tests and the demo reach it with ``httpx.ASGITransport``), or on a loopback port
(:func:`serve_in_thread`). Its ServiceProviderConfig can turn Bulk, PATCH and ETags off, and
it can refuse PATCH on /Groups only, as some apps do. Only the demo, the benchmarks and the
tests import this module.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import httpx
from scim2_models import Bulk, ETag, NotImplementedException, Patch, ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.routing import Operation
from scim2_server.service import ScimService
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from provisioner.sandbox.ports import free_port


class _Service(ScimService):
    """scim2-server's service with one switch: refuse PATCH on Groups (RFC 7644 §3.12: 501)."""

    refuse_group_patch = False

    def authorize(self, request: Any, target: Any, resource_type: Any) -> None:  # type: ignore[override]
        if self.refuse_group_patch and target.operation is Operation.patch and resource_type.name == "Group":
            raise NotImplementedException(detail="PATCH is not supported on Groups")


class _App(ASGIApplication):
    def __init__(self, storage: AsyncInMemoryStorage, provider: ScimProvider, service: ScimService,
                 token: str | None) -> None:
        super().__init__(storage, provider, service)
        self.token = token

    def check_auth(self, request: Any) -> None:
        if self.token is None:
            return
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token, self.token):
            raise UnauthorizedException


class ScimSandbox:
    """``ScimSandbox(token=...)``; ``.transport()`` for httpx, ``.client()`` to look inside."""

    def __init__(self, *, token: str | None = None, bulk: bool = True, patch: bool = True,
                 group_patch: bool = True, etag: bool = True, max_operations: int = 1000,
                 max_payload: int = 1024 * 1024, max_results: int = 1000, filter: bool = True,
                 blind_filters: tuple[str, ...] = ()) -> None:
        """``filter=False`` announces no filtering (the server still answers filters);
        ``blind_filters`` makes the service's filters on those attributes find nothing (an empty
        ListResponse), as an app whose filter settings do not map them (django-scim2's shipped
        group filter maps no attribute); the sandbox's own ``client()`` still filters."""
        self.token = token
        self.blind_filters = tuple(a.lower() for a in blind_filters)
        config = load_default_service_provider_config()
        config.bulk = Bulk(supported=bulk, max_operations=max_operations, max_payload_size=max_payload)
        config.patch = Patch(supported=patch)
        config.etag = ETag(supported=etag)
        if config.filter is not None:
            config.filter.max_results = max_results
            config.filter.supported = filter
        provider = ScimProvider.from_discovery(load_default_schemas().values(),
                                               load_default_resource_types().values(), config=config)
        service = _Service(provider, secret=secrets.token_urlsafe(16))
        service.refuse_group_patch = not group_patch
        self.storage = AsyncInMemoryStorage()
        self.app = _App(self.storage, provider, service, token)

    def transport(self) -> httpx.AsyncBaseTransport:
        inner = httpx.ASGITransport(app=self.app)
        return _BlindFilters(inner, self.blind_filters) if self.blind_filters else inner

    def client(self) -> httpx.AsyncClient:
        """An HTTP client of the server's own API (for checks from outside the service)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://scim.test/v2",
                                 headers=headers)

    # What the server holds, read through its own API.
    async def users(self) -> list[dict[str, Any]]:
        async with self.client() as client:
            out: list[dict[str, Any]] = []
            start = 1
            while True:
                body = (await client.get("/Users", params={"startIndex": start, "count": 1000})).json()
                page = body.get("Resources") or []
                out.extend(page)
                start += len(page)
                if not page or start > body.get("totalResults", 0):
                    return out

    async def user_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        async with self.client() as client:
            body = (await client.get("/Users", params={"filter": f'externalId eq "{external_id}"'})).json()
            return body.get("Resources") or []

    async def group(self, name: str) -> dict[str, Any] | None:
        async with self.client() as client:
            body = (await client.get("/Groups", params={"filter": f'displayName eq "{name}"'})).json()
            found = body.get("Resources") or []
            return found[0] if found else None

    async def group_members(self, name: str) -> set[str]:
        group = await self.group(name)
        return {m["value"] for m in (group or {}).get("members") or []}

    async def add(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.client() as client:
            reply = await client.post(f"/{resource}", json=body)
            reply.raise_for_status()
            return reply.json()


class _BlindFilters(httpx.AsyncBaseTransport):
    """Answers a filter naming one of ``attributes`` with an empty ListResponse (200)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, attributes: tuple[str, ...]) -> None:
        self.inner = inner
        self.attributes = attributes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        expr = request.url.params.get("filter", "").lower()
        if request.method == "GET" and expr and any(f"{a} " in expr for a in self.attributes):
            return httpx.Response(200, json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                                             "totalResults": 0, "startIndex": 1, "itemsPerPage": 0,
                                             "Resources": []},
                                  headers={"Content-Type": "application/scim+json"})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def serve_in_thread(sandbox: ScimSandbox, port: int | None = None) -> tuple[str, Any]:
    """Serve the sandbox on 127.0.0.1 with uvicorn in a daemon thread; returns (base URL, server)."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(sandbox.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True, name=f"scim-sandbox-{port}")
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the SCIM sandbox could not listen on 127.0.0.1:{port}")
        threading.Event().wait(0.02)
    return f"http://127.0.0.1:{port}/v2", server
