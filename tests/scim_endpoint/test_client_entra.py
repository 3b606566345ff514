"""What Microsoft Entra ID's provisioning service sends (without the aadOptscim062020 flag).

Each test names the Entra ID behaviour it covers; see /work/shared/reference/scim.md.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from provisioner.identities.models import Identity
from tests.scim_endpoint.helpers import (
    BASE,
    ENTERPRISE,
    GROUP_SCHEMA,
    USER_SCHEMA,
    Scim,
    create_user,
)
from tests.scim_endpoint.helpers import patch_body as entra_patch

ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


@pytest.fixture
def entra_user(client: TestClient) -> dict[str, Any]:
    """Entra ID's create payload (its documented shape, with externalId and a work e-mail)."""
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User@contoso.com",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": "Test_User@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
        ENTERPRISE: {"department": "Sales"},
    }
    response = client.post(f"{BASE}/Users", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_entra_connection_test_gets_an_empty_200_list_response(client: TestClient) -> None:
    response = client.get(f"{BASE}/Users", params={"filter": 'userName eq "non-existent user"'})
    assert response.status_code == 200
    assert response.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


@pytest.mark.parametrize(
    "filter_text",
    [
        'userName eq "test_user@contoso.com"',
        'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"',
        'emails[type eq "work"].value eq "Test_User@contoso.com"',
        'userName eq "Test_User@contoso.com" and externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"',
    ],
)
def test_entra_matching_queries_use_eq_and_and(
    client: TestClient, entra_user: dict[str, Any], filter_text: str
) -> None:
    response = client.get(f"{BASE}/Users", params={"filter": filter_text})
    assert [r["id"] for r in response.json()["Resources"]] == [entra_user["id"]]


def test_entra_capitalised_ops_and_string_booleans(scim: Scim, entra_user: dict[str, Any]) -> None:
    url = f"{BASE}/Users/{entra_user['id']}"
    response = scim.client.patch(
        url,
        json=entra_patch(
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "title", "value": "Seller"},
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False and response.json()["title"] == "Seller"
    with scim.db.transaction() as session:
        row = session.get(Identity, entra_user["id"])
        assert row is not None and (row.active, row.state) == (False, "terminated")
    response = scim.client.patch(
        url, json=entra_patch({"op": "Replace", "path": "active", "value": "True"})
    )
    assert response.json()["active"] is True
    response = scim.client.patch(url, json=entra_patch({"op": "Remove", "path": "title"}))
    assert "title" not in response.json()


def test_entra_replace_without_path_with_attribute_path_and_urn_keys(
    client: TestClient, entra_user: dict[str, Any]
) -> None:
    response = client.patch(
        f"{BASE}/Users/{entra_user['id']}",
        json=entra_patch(
            {
                "op": "Replace",
                "value": {
                    "name.givenName": "Barbara",
                    "name.familyName": "Jensen",
                    "displayName": "Barbara Jensen",
                    f"{ENTERPRISE}:department": "Marketing",
                    f"{ENTERPRISE}:employeeNumber": "701984",
                    "active": "True",
                },
            }
        ),
    )
    assert response.status_code == 200, response.text
    user = response.json()
    assert user["name"]["givenName"] == "Barbara" and user["name"]["familyName"] == "Jensen"
    assert user["name"]["formatted"] == "givenName familyName"  # untouched
    assert user[ENTERPRISE]["department"] == "Marketing"
    assert user[ENTERPRISE]["employeeNumber"] == "701984"
    found = client.get(
        f"{BASE}/Users", params={"filter": f'{ENTERPRISE}:department eq "marketing"'}
    )
    assert found.json()["totalResults"] == 1


def test_entra_add_on_work_email_value_creates_the_email(client: TestClient) -> None:
    user_id = create_user(client, "noemail@contoso.com")["id"]
    response = client.patch(
        f"{BASE}/Users/{user_id}",
        json=entra_patch(
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "new@contoso.com"}
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json()["emails"] == [{"value": "new@contoso.com", "type": "work"}]
    found = client.get(
        f"{BASE}/Users", params={"filter": 'emails[type eq "work"].value eq "new@contoso.com"'}
    )
    assert [r["id"] for r in found.json()["Resources"]] == [user_id]
    response = client.patch(
        f"{BASE}/Users/{user_id}",
        json=entra_patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "newer@contoso.com"}
        ),
    )
    assert response.json()["emails"] == [{"value": "newer@contoso.com", "type": "work"}]


def test_entra_group_with_adscim_schema_lookup_and_member_removal(scim: Scim) -> None:
    client = scim.client
    members = [
        create_user(client, f"m{i}@contoso.com")["id"]
        for i in range(3)
    ]
    response = client.post(
        f"{BASE}/Groups",
        json={
            "schemas": [GROUP_SCHEMA, ADSCIM],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Group1DisplayName",
            "meta": {"resourceType": "Group"},
        },
    )
    assert response.status_code == 201, response.text
    group_id = response.json()["id"]
    # Entra ID looks the group up by displayName without members
    response = client.get(
        f"{BASE}/Groups",
        params={"filter": 'displayName eq "Group1DisplayName"', "excludedAttributes": "members"},
    )
    assert [r["id"] for r in response.json()["Resources"]] == [group_id]
    assert "members" not in response.json()["Resources"][0]
    url = f"{BASE}/Groups/{group_id}"
    response = client.patch(
        url,
        json=entra_patch(
            {"op": "Add", "path": "members", "value": [{"value": m} for m in members]}
        ),
    )
    assert response.status_code == 204
    # Remove with a value list removes only those members (not all of them)
    scim.hook.calls.clear()
    response = client.patch(
        url, json=entra_patch({"op": "Remove", "path": "members", "value": [{"value": members[1]}]})
    )
    assert response.status_code == 204
    group = client.get(url).json()
    assert {m["value"] for m in group["members"]} == {members[0], members[2]}
    assert scim.hook.ids() == {members[1]}
    response = client.patch(
        url, json=entra_patch({"op": "Replace", "path": "displayName", "value": "Group1 Renamed"})
    )
    assert response.status_code == 204
    assert (
        client.get(url, params={"excludedAttributes": "members"}).json()["displayName"]
        == "Group1 Renamed"
    )


def test_entra_pathless_replace_with_a_filtered_key(client: TestClient) -> None:
    user_id = create_user(client, "k@contoso.com")["id"]
    response = client.patch(
        f"{BASE}/Users/{user_id}",
        json=entra_patch(
            {
                "op": "Replace",
                "value": {'emails[type eq "work"].value': "k.work@contoso.com", "title": "T"},
            }
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json()["emails"] == [{"value": "k.work@contoso.com", "type": "work"}]
    assert response.json()["title"] == "T"
