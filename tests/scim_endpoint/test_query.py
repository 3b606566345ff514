"""Sorting, pagination, attribute selection, root search and discovery (RFC 7644 §3.4, §4)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from provisioner.scim.config import BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD_SIZE, MAX_RESULTS
from tests.scim_endpoint.helpers import (
    BASE,
    SEARCH_SCHEMA,
    assert_error,
    create_group,
    create_user,
)


@pytest.fixture
def many(client: TestClient) -> list[dict[str, Any]]:
    """Seven users, some without a title."""
    titles = ["b", None, "A", "c", None, "B", "a"]
    return [
        create_user(client, f"user{i}@example.com", **({"title": t} if t else {}))
        for i, t in enumerate(titles)
    ]


def _titles(response: Any) -> list[str | None]:
    assert response.status_code == 200, response.text
    return [r.get("title") for r in response.json()["Resources"]]


def test_sort_ascending_and_descending_case_insensitively(
    client: TestClient, many: list[dict[str, Any]]
) -> None:
    asc = _titles(client.get(f"{BASE}/Users", params={"sortBy": "title"}))
    assert [t.lower() if t else t for t in asc] == ["a", "a", "b", "b", "c", None, None]
    desc = _titles(
        client.get(f"{BASE}/Users", params={"sortBy": "title", "sortOrder": "descending"})
    )
    assert [t.lower() if t else t for t in desc] == [None, None, "c", "b", "b", "a", "a"]
    names = client.get(f"{BASE}/Users", params={"sortBy": "userName", "attributes": "userName"})
    user_names = [r["userName"] for r in names.json()["Resources"]]
    assert user_names == sorted(user_names)
    assert_error(client.get(f"{BASE}/Users", params={"sortBy": "groups"}), 400)
    assert_error(client.get(f"{BASE}/Users", params={"sortOrder": "sideways"}), 400)


def test_pagination_is_stable_and_counts_are_numbers(
    client: TestClient, many: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    for start in (1, 4, 7):
        response = client.get(f"{BASE}/Users", params={"startIndex": start, "count": 3})
        page = response.json()
        assert page["totalResults"] == 7 and page["startIndex"] == start
        assert isinstance(page["itemsPerPage"], int)
        seen += [r["id"] for r in page["Resources"]]
    assert len(seen) == len(set(seen)) == 7
    again = client.get(f"{BASE}/Users", params={"startIndex": 1, "count": 7}).json()
    assert [r["id"] for r in again["Resources"]] == seen
    empty = client.get(f"{BASE}/Users", params={"startIndex": 50}).json()
    assert empty["totalResults"] == 7 and empty["Resources"] == [] and empty["itemsPerPage"] == 0
    only_total = client.get(f"{BASE}/Users", params={"count": 0}).json()
    assert only_total["totalResults"] == 7 and only_total["Resources"] == []
    negative = client.get(f"{BASE}/Users", params={"count": -5, "startIndex": 0}).json()
    assert negative["itemsPerPage"] == 0 and negative["startIndex"] == 1
    big = client.get(f"{BASE}/Users", params={"count": MAX_RESULTS * 10}).json()
    assert big["itemsPerPage"] == 7
    assert_error(client.get(f"{BASE}/Users", params={"count": "many"}), 400)


def test_root_search_covers_users_and_groups(client: TestClient) -> None:
    user = create_user(client, "root@example.com", displayName="Root User")
    group = create_group(client, "Root Group", [user["id"]])
    body = {
        "schemas": [SEARCH_SCHEMA],
        "filter": 'displayName sw "root"',
        "excludedAttributes": ["members"],
    }
    response = client.post(f"{BASE}/.search", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["totalResults"] == 2
    assert [r["id"] for r in data["Resources"]] == [user["id"], group["id"]]
    assert "members" not in data["Resources"][1]
    # userName only exists on Users: Groups contribute nothing (RFC 7644 §3.4.2.1)
    body = {"schemas": [SEARCH_SCHEMA], "filter": 'userName eq "root@example.com"'}
    assert [r["id"] for r in client.post(f"{BASE}/.search", json=body).json()["Resources"]] == [
        user["id"]
    ]
    paged = {"schemas": [SEARCH_SCHEMA], "startIndex": 2, "count": 1}
    assert [r["id"] for r in client.post(f"{BASE}/.search", json=paged).json()["Resources"]] == [
        group["id"]
    ]
    bad = {"schemas": [SEARCH_SCHEMA], "filter": 'nothing eq "x"'}
    assert_error(client.post(f"{BASE}/.search", json=bad), 400, "invalidFilter")


def test_discovery(client: TestClient) -> None:
    config = client.get(f"{BASE}/ServiceProviderConfig").json()
    assert config["bulk"] == {
        "supported": True,
        "maxOperations": BULK_MAX_OPERATIONS,
        "maxPayloadSize": BULK_MAX_PAYLOAD_SIZE,
    }
    assert config["filter"] == {"supported": True, "maxResults": MAX_RESULTS}
    assert (
        config["etag"]["supported"] and config["patch"]["supported"] and config["sort"]["supported"]
    )
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = client.get(f"{BASE}/ResourceTypes").json()
    assert {r["id"] for r in types["Resources"]} == {"User", "Group"}
    user_type = client.get(f"{BASE}/ResourceTypes/User").json()
    assert user_type["schemaExtensions"] == [
        {"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": False}
    ]
    schemas = client.get(f"{BASE}/Schemas").json()
    assert {s["id"] for s in schemas["Resources"]} == {
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    }
    group_schema = client.get(f"{BASE}/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").json()
    members = next(a for a in group_schema["attributes"] if a["name"] == "members")
    display = next(a for a in members["subAttributes"] if a["name"] == "display")
    assert display["mutability"] == "readOnly"
    assert_error(client.get(f"{BASE}/Schemas/urn:nope"), 404)
    assert_error(client.get(f"{BASE}/ResourceTypes/Nope"), 404)
    assert_error(client.get(f"{BASE}/ResourceTypes", params={"filter": 'id eq "User"'}), 403)
