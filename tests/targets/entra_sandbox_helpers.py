"""Helpers shared by the Entra connector tests (a uniquely named module, not conftest)."""

from __future__ import annotations

import httpx

from provisioner.targets.config import EntraTarget
from provisioner.targets.entra.connector import EntraConnector
from provisioner.targets.entra.credentials import StaticTokenCredential

SANDBOX_URL = "http://127.0.0.1/v1.0"
TEST_TOKEN = "sandbox-test-token-do-not-log"
DOMAIN = "example.test"  # the test tenant's verified domain (accounts.domain)


def entra_config(**throttle: float) -> EntraTarget:
    """A target pointing at the in-process sandbox; pacing generous so tests never wait."""
    return EntraTarget.model_validate(
        {
            "kind": "entra",
            "name": "entra-test",
            "graph_url": SANDBOX_URL,
            "auth": {"method": "static_token", "token": {"env": "PROVISIONER_TEST_GRAPH_TOKEN"}},
            "accounts": {"domain": DOMAIN, "usage_location": "DE"},
            "throttle": {"writes_per_second": 10_000, "burst": 10_000, "concurrency": 4, **throttle},
        }
    )


def connector_for(sandbox, *, dry_run: bool = False) -> EntraConnector:
    return EntraConnector.create(
        entra_config(),
        transport=httpx.ASGITransport(app=sandbox.app),
        credential=StaticTokenCredential(TEST_TOKEN),
        dry_run=dry_run,
    )


class FailNextBatchTransport(httpx.AsyncBaseTransport):
    """Answers the next ``POST /$batch`` itself with an error (the sandbox faults only reach
    single requests and batch items); everything else goes to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.pending: list[httpx.Response] = []

    def fail_next_batch(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"error": {"code": code, "message": message}}
        self.pending.append(httpx.Response(status, json=body, headers=headers))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.pending and request.method == "POST" and request.url.path.endswith("/$batch"):
            return self.pending.pop(0)
        return await self.inner.handle_async_request(request)
