"""Protocol edges: authentication, unknown paths and methods, error body shape, link hosts."""

from __future__ import annotations

import httpx
import pytest
from msgraph import GraphServiceClient

from provisioner.sandbox.graph.app import GraphSandbox


@pytest.fixture
def anonymous_http(sandbox: GraphSandbox) -> httpx.AsyncClient:
    """httpx on the sandbox without any Authorization header."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://127.0.0.1/v1.0")


async def test_missing_bearer_token_is_401(anonymous_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    async with anonymous_http:
        response = await anonymous_http.get("/users")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert (sandbox.stats.http_calls, sandbox.stats.reads) == (1, 0)


async def test_wrong_bearer_token_is_401_when_one_is_configured(anonymous_http: httpx.AsyncClient) -> None:
    async with anonymous_http:
        wrong = await anonymous_http.get("/users", headers={"Authorization": "Bearer nope"})
        right = await anonymous_http.get("/users", headers={"Authorization": "Bearer sandbox-test-token"})
    assert wrong.status_code == 401 and right.status_code == 200


async def test_any_bearer_token_is_accepted_without_a_configured_one() -> None:
    open_sandbox = GraphSandbox()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=open_sandbox.app)) as http:
        response = await http.get(
            "http://127.0.0.1/v1.0/groups", headers={"Authorization": "Bearer anything"}
        )
    assert response.status_code == 200


async def test_sdk_sends_the_credential_token(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    sandbox.seed_group("Visible")
    page = await sdk.groups.get()
    assert page is not None and [group.display_name for group in page.value or []] == ["Visible"]


async def test_unknown_segment_is_400_and_wrong_method_is_405(raw_http: httpx.AsyncClient) -> None:
    unknown = await raw_http.get("/applications")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Resource not found for the segment 'applications'."
    wrong_method = await raw_http.put("/users")
    assert wrong_method.status_code == 405


async def test_errors_echo_the_client_request_id(raw_http: httpx.AsyncClient) -> None:
    response = await raw_http.get("/users/nobody@contoso.com", headers={"client-request-id": "abc-123"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["innerError"]["client-request-id"] == "abc-123"


async def test_next_link_uses_the_callers_host(sandbox: GraphSandbox) -> None:
    for i in range(3):
        sandbox.seed_user(f"u{i}@contoso.com")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        response = await http.get(
            "http://sandbox.local:8400/v1.0/users?$top=2",
            headers={"Authorization": "Bearer sandbox-test-token"},
        )
    assert response.json()["@odata.nextLink"].startswith(
        "http://sandbox.local:8400/v1.0/users?$top=2&$skiptoken="
    )


async def test_expired_skip_token_is_400(raw_http: httpx.AsyncClient) -> None:
    response = await raw_http.get("/users", params={"$skiptoken": "unknown"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Directory_ExpiredPageToken"


async def test_invalid_json_body_is_400(raw_http: httpx.AsyncClient) -> None:
    response = await raw_http.post(
        "/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
