"""What Okta's SCIM 2.0 provisioning sends.

Each test names the Okta behaviour it covers; see /work/shared/reference/scim.md.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from provisioner.identities.models import Identity
from tests.scim_endpoint.helpers import BASE, GROUP_SCHEMA, USER_SCHEMA, Scim, assert_error

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def okta_user(login: str) -> dict[str, Any]:
    """Okta's create payload: password and an empty groups list included."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": login,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": login, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


@pytest.fixture
def created(scim: Scim) -> dict[str, Any]:
    response = scim.client.post(f"{BASE}/Users", json=okta_user("test.user@okta.example.com"))
    assert response.status_code == 201, response.text
    return response.json()


def test_okta_post_with_password_and_groups(scim: Scim, created: dict[str, Any]) -> None:
    assert "password" not in created and "groups" not in created
    assert created["active"] is True and created["locale"] == "en-US"
    with scim.db.transaction() as session:
        row = session.scalars(select(Identity).where(Identity.id == created["id"])).one()
        assert "1mz050nq" not in repr(row.extra)  # passwords are never stored


def test_okta_duplicate_is_409(client: TestClient, created: dict[str, Any]) -> None:
    response = client.post(f"{BASE}/Users", json=okta_user("test.user@okta.example.com"))
    assert_error(response, 409, "uniqueness")


def test_okta_lookup_by_user_name_with_paging_numbers(
    client: TestClient, created: dict[str, Any]
) -> None:
    response = client.get(
        f"{BASE}/Users",
        params={
            "filter": 'userName eq "test.user@okta.example.com"',
            "startIndex": "1",
            "count": "100",
        },
    )
    body = response.json()
    assert body["totalResults"] == 1 and body["startIndex"] == 1 and body["itemsPerPage"] == 1
    assert all(isinstance(body[k], int) for k in ("totalResults", "startIndex", "itemsPerPage"))
    assert body["Resources"][0]["id"] == created["id"]


def test_okta_full_put_with_id_and_meta(client: TestClient, created: dict[str, Any]) -> None:
    body = dict(created)
    body["name"] = {"givenName": "Another", "familyName": "User"}
    body["password"] = "newpassword"
    response = client.put(f"{BASE}/Users/{created['id']}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == {"givenName": "Another", "familyName": "User"}
    assert response.json()["meta"]["version"] == 'W/"2"'


def test_okta_deactivates_with_a_pathless_replace(scim: Scim, created: dict[str, Any]) -> None:
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    response = scim.client.patch(f"{BASE}/Users/{created['id']}", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    with scim.db.transaction() as session:
        row = session.get(Identity, created["id"])
        assert row is not None and (row.active, row.state) == (False, "terminated")
    assert scim.hook.calls[-1] == (created["id"], "scim")


def test_okta_group_push(scim: Scim) -> None:
    client = scim.client
    users = [
        client.post(
            f"{BASE}/Users", json=okta_user(f"u{i}@okta.example.com") | {"externalId": f"x{i}"}
        ).json()["id"]
        for i in range(3)
    ]
    response = client.post(
        f"{BASE}/Groups",
        json={"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2", "members": []},
    )
    assert response.status_code == 201, response.text
    group_id = response.json()["id"]
    url = f"{BASE}/Groups/{group_id}"

    def patch(*ops: dict[str, Any]) -> Any:
        return client.patch(url, json={"schemas": [PATCH], "Operations": list(ops)})

    # rename: replace without path carrying id and displayName
    assert (
        patch(
            {"op": "replace", "value": {"id": group_id, "displayName": "Test SCIMv2 renamed"}}
        ).status_code
        == 204
    )
    # add with value and display
    response = patch(
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": users[0], "display": "u0@okta.example.com"},
                {"value": users[1], "display": "u1@okta.example.com"},
            ],
        }
    )
    assert response.status_code == 204
    # remove members[value eq "ID"]
    assert patch({"op": "remove", "path": f'members[value eq "{users[0]}"]'}).status_code == 204
    group = client.get(url).json()
    assert group["displayName"] == "Test SCIMv2 renamed"
    assert {m["value"] for m in group["members"]} == {users[1]}
    # replace path members
    assert (
        patch(
            {
                "op": "replace",
                "path": "members",
                "value": [{"value": users[2], "display": "u2@okta.example.com"}],
            }
        ).status_code
        == 204
    )
    assert {m["value"] for m in client.get(url).json()["members"]} == {users[2]}
