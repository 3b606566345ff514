"""The third-party conformance suite, scim2-tester, run in-process: every check must succeed.

scim2-client's engines speak httpx2 or raw ASGI; this small client sends its requests through
Starlette's TestClient (httpx), so the suite runs against the app built for the test.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from scim2_client import BaseSyncSCIMClient
from scim2_client.engines.inprocess import _stays_under_base_url
from scim2_tester import Status, check_server
from starlette.testclient import TestClient

from tests.scim_endpoint.helpers import BASE, Scim


class TestClientSCIMClient(BaseSyncSCIMClient):
    """A synchronous scim2-client over Starlette's TestClient."""

    __test__ = False  # not a pytest test class

    def __init__(self, client: TestClient, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client
        self.base_url = base_url.rstrip("/")

    def _stays_under_base_url(self, endpoint: str) -> bool:
        return _stays_under_base_url(self.base_url, endpoint)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if "://" not in url:
            url = f"{self.base_url}/{url.lstrip('/')}"
        return self.client.request(method, url, **kwargs)


def test_scim2_tester_every_check_succeeds(scim: Scim) -> None:
    client = TestClientSCIMClient(scim.client, f"http://testserver{BASE}")
    results = check_server(client, raise_exceptions=False)
    failures = [
        f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason}"
        for r in results
        if r.status != Status.SUCCESS
    ]
    assert not failures, "\n".join(failures)
    counts = Counter(r.resource_type for r in results)
    assert len(results) >= 130, len(results)
    assert counts["User"] > 50 and counts["Group"] > 10
