"""Bearer tokens (RFC 7644 §2): 401 without a valid token, 403 for a read-only token writing."""

from __future__ import annotations

import pytest

from provisioner.tokens.service import revoke_token
from tests.scim_endpoint.helpers import (
    BASE,
    BULK_SCHEMA,
    SEARCH_SCHEMA,
    Scim,
    assert_error,
    create_user,
    patch_body,
    user_body,
)


@pytest.mark.parametrize("token", [None, "pvt_wrong", ""])
def test_missing_or_unknown_token_is_401(scim: Scim, token: str | None) -> None:
    client = scim.as_token(token)
    for response in (
        client.get(f"{BASE}/Users"),
        client.get(f"{BASE}/ServiceProviderConfig"),
        client.post(f"{BASE}/Users", json=user_body("x")),
        client.post(f"{BASE}/Bulk", json={"schemas": [BULK_SCHEMA], "Operations": []}),
    ):
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="SCIM"')


def test_basic_auth_is_401(scim: Scim) -> None:
    response = scim.as_token(None).get(f"{BASE}/Users", headers={"Authorization": "Basic eDp5"})
    assert_error(response, 401)


def test_revoked_token_is_401(scim: Scim) -> None:
    client = scim.as_token(scim.tokens["rw"])
    assert client.get(f"{BASE}/Users").status_code == 200
    with scim.db.transaction() as session:
        revoke_token(session, "test-rw")
    response = client.get(f"{BASE}/Users")
    assert_error(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_read_only_token_reads_but_cannot_write(scim: Scim) -> None:
    user = create_user(scim.client, "ro@example.com")
    reader = scim.as_token(scim.tokens["ro"])
    assert reader.get(f"{BASE}/Users/{user['id']}").status_code == 200
    assert reader.get(f"{BASE}/Users").status_code == 200
    assert (
        reader.post(f"{BASE}/Users/.search", json={"schemas": [SEARCH_SCHEMA]}).status_code == 200
    )
    assert reader.post(f"{BASE}/.search", json={"schemas": [SEARCH_SCHEMA]}).status_code == 200
    assert reader.get(f"{BASE}/Schemas").status_code == 200
    url = f"{BASE}/Users/{user['id']}"
    for response in (
        reader.post(f"{BASE}/Users", json=user_body("new@example.com")),
        reader.put(url, json=user_body("ro@example.com")),
        reader.patch(url, json=patch_body({"op": "replace", "path": "title", "value": "x"})),
        reader.delete(url),
        reader.post(f"{BASE}/Groups", json={"schemas": [], "displayName": "x"}),
        reader.post(f"{BASE}/Bulk", json={"schemas": [BULK_SCHEMA], "Operations": []}),
    ):
        assert_error(response, 403)
    assert scim.client.get(url).json()["meta"]["version"] == 'W/"1"'


def test_errors_outside_the_scim_prefix_are_not_scim(scim: Scim) -> None:
    response = scim.client.get("/not-scim")
    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("application/scim+json")
