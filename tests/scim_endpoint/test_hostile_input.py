"""Input a client can send that no database stores or no page reaches: each is a SCIM 400 (or an
empty page), never a 500, and nothing is half-stored (RFC 7644 §3.12)."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from tests.scim_endpoint.helpers import (
    BASE,
    BULK_SCHEMA,
    GROUP_SCHEMA,
    SEARCH_SCHEMA,
    USER_SCHEMA,
    Scim,
    assert_error,
    create_user,
    patch_body,
    seed_hr_identity,
)

# JSON text, so the escapes reach the server as a client writes them (RFC 8259 §7).
UNPAIRED_SURROGATE = '"a\\ud800b"'
NUL = '"a\\u0000b"'


def _post_raw(client: TestClient, path: str, body_text: str) -> object:
    return client.post(f"{BASE}{path}", content=body_text.encode(),
                       headers={"Content-Type": "application/scim+json"})


@pytest.mark.parametrize("literal", [UNPAIRED_SURROGATE, NUL])
def test_a_user_name_no_database_stores_is_a_400_naming_the_attribute(client: TestClient, literal: str) -> None:
    body = f'{{"schemas": ["{USER_SCHEMA}"], "userName": {literal}}}'
    error = assert_error(_post_raw(client, "/Users", body), 400, "invalidValue")
    assert "userName" in error["detail"]
    assert client.get(f"{BASE}/Users").json()["totalResults"] == 0  # nothing stored


@pytest.mark.parametrize("literal", [UNPAIRED_SURROGATE, NUL])
def test_nested_and_bulk_values_no_database_stores_are_refused(client: TestClient, literal: str) -> None:
    user = create_user(client, "kept@example.com")
    body = json.dumps(patch_body({"op": "replace", "path": "name.givenName", "value": "X"}))
    body = body.replace('"X"', literal)
    error = assert_error(client.patch(f"{BASE}/Users/{user['id']}", content=body.encode(),
                                      headers={"Content-Type": "application/scim+json"}), 400, "invalidValue")
    assert "Operations[0].value" in error["detail"]
    bulk = (f'{{"schemas": ["{BULK_SCHEMA}"], "Operations": [{{"method": "POST", "path": "/Groups", '
            f'"bulkId": "g", "data": {{"schemas": ["{GROUP_SCHEMA}"], "displayName": {literal}}}}}]}}')
    assert_error(_post_raw(client, "/Bulk", bulk), 400, "invalidValue")
    assert client.get(f"{BASE}/Users/{user['id']}").json().get("name") is None
    assert client.get(f"{BASE}/Groups").json()["totalResults"] == 0


@pytest.mark.parametrize("literal", [UNPAIRED_SURROGATE, NUL])
@pytest.mark.parametrize("path", ["/Users", "/Groups"])
def test_a_filter_value_no_database_stores_is_invalid_filter(client: TestClient, literal: str, path: str) -> None:
    attribute = "userName" if path == "/Users" else "displayName"
    assert_error(client.get(f"{BASE}{path}", params={"filter": f"{attribute} eq {literal}"}), 400, "invalidFilter")
    search = json.dumps({"schemas": [SEARCH_SCHEMA], "filter": f"{attribute} eq {literal}"})
    assert_error(_post_raw(client, f"{path}/.search", search), 400, "invalidFilter")


@pytest.mark.parametrize("path", ["/Users", "/Groups"])
def test_a_start_index_past_any_offset_is_an_empty_page(client: TestClient, path: str) -> None:
    create_user(client, "one@example.com")
    response = client.get(f"{BASE}{path}", params={"startIndex": str(10**20)})
    assert response.status_code == 200, response.text
    assert response.json().get("Resources", []) == []
    assert response.json()["totalResults"] == (1 if path == "/Users" else 0)
    search = client.post(f"{BASE}/.search", json={"schemas": [SEARCH_SCHEMA], "startIndex": 10**20})
    assert search.status_code == 200, search.text
    assert search.json().get("Resources", []) == []


def test_bulk_checks_the_token_before_reading_a_large_body(scim: Scim) -> None:
    large = b'{"schemas": ["' + BULK_SCHEMA.encode() + b'"], "Operations": [], "pad": "' + b"x" * 1_100_000 + b'"}'
    headers = {"Content-Type": "application/scim+json"}
    assert_error(scim.as_token("not-a-token").post(f"{BASE}/Bulk", content=large, headers=headers), 401)
    assert_error(scim.as_token(scim.tokens["ro"]).post(f"{BASE}/Bulk", content=large, headers=headers), 403)
    assert_error(scim.client.post(f"{BASE}/Bulk", content=large, headers=headers), 413)


def test_an_hr_user_name_sent_back_in_another_case_is_the_same_value(scim: Scim) -> None:
    # userName is caseExact false (RFC 7643 §4.1.1): a client echoing it in another case changes
    # nothing, and HR's spelling stays; a different name is still refused.
    hr_id = seed_hr_identity(scim.db, employee_id="E1", user_name="Hr.User@example.com", given_name="Hr")
    url = f"{BASE}/Users/{hr_id}"
    before = scim.client.get(url).json()
    patched = scim.client.patch(url, json=patch_body({"op": "replace", "path": "userName",
                                                      "value": "HR.USER@EXAMPLE.COM"}))
    assert patched.status_code == 200, patched.text
    assert patched.json()["userName"] == "Hr.User@example.com"
    assert patched.json()["meta"]["version"] == before["meta"]["version"]
    put_body = {key: value for key, value in before.items() if key not in ("meta", "groups")}
    put_body["userName"] = "hr.user@EXAMPLE.com"
    replaced = scim.client.put(url, json=put_body)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["userName"] == "Hr.User@example.com"
    other = patch_body({"op": "replace", "path": "userName", "value": "someone.else@example.com"})
    assert_error(scim.client.patch(url, json=other), 400, "mutability")
