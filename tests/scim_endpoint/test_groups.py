"""/Groups: SCIM-managed groups, policy groups (read-only), membership and its hook."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from provisioner.directory.models import DirectoryGroup
from tests.scim_endpoint.helpers import (
    BASE,
    GROUP_SCHEMA,
    Scim,
    assert_error,
    create_group,
    create_user,
    patch_body,
    seed_policy_group,
)


def _members(client: TestClient, group_id: str) -> set[str]:
    group = client.get(f"{BASE}/Groups/{group_id}").json()
    return {member["value"] for member in group.get("members", [])}


def test_create_and_read_group(scim: Scim) -> None:
    client = scim.client
    alice = create_user(client, "alice@example.com", displayName="Alice")
    response = client.post(
        f"{BASE}/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Engineering",
            "externalId": "ext-eng",
            "members": [{"value": alice["id"], "display": "ignored"}],
        },
    )
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["members"] == [
        {
            "value": alice["id"],
            "$ref": f"http://testserver{BASE}/Users/{alice['id']}",
            "display": "Alice",  # the member's displayName: members.display is readOnly
            "type": "User",
        }
    ]
    assert group["externalId"] == "ext-eng" and group["meta"]["version"] == 'W/"1"'
    assert response.headers["Location"] == group["meta"]["location"]
    assert (alice["id"], "scim") in scim.hook.calls
    with scim.db.transaction() as session:
        row = session.scalars(select(DirectoryGroup)).one()
        assert row.source == "scim"


def test_duplicate_display_name_is_409(client: TestClient) -> None:
    create_group(client, "Finance")
    response = client.post(
        f"{BASE}/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "FINANCE"}
    )
    assert_error(response, 409, "uniqueness")


def test_unknown_or_nested_members_are_refused(client: TestClient) -> None:
    response = client.post(
        f"{BASE}/Groups",
        json={"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": "nobody"}]},
    )
    assert_error(response, 400, "invalidValue")
    other = create_group(client, "Other")
    response = client.post(
        f"{BASE}/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Nested",
            "members": [{"value": other["id"], "type": "Group"}],
        },
    )
    assert_error(response, 400, "invalidValue")


def test_patch_membership_fast_path_and_hook(scim: Scim) -> None:
    client = scim.client
    a, b, c = (create_user(client, f"{n}@example.com")["id"] for n in "abc")
    group = create_group(client, "Team", [a])
    url = f"{BASE}/Groups/{group['id']}"
    scim.hook.calls.clear()

    response = client.patch(
        url,
        json=patch_body({"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}),
    )
    assert response.status_code == 204 and response.headers["ETag"] == 'W/"2"'
    assert response.content == b""
    assert _members(client, group["id"]) == {a, b, c}
    assert scim.hook.ids() == {b, c}

    response = client.patch(
        url, json=patch_body({"op": "remove", "path": f'members[value eq "{a}"]'})
    )
    assert response.status_code == 204
    assert _members(client, group["id"]) == {b, c}

    response = client.patch(
        url, json=patch_body({"op": "replace", "path": "members", "value": [{"value": a}]})
    )
    assert response.status_code == 204
    assert _members(client, group["id"]) == {a}

    response = client.patch(url, json=patch_body({"op": "remove", "path": "members"}))
    assert response.status_code == 204
    assert _members(client, group["id"]) == set()

    # adding a member twice and removing a non-member change nothing: same version
    client.patch(url, json=patch_body({"op": "add", "path": "members", "value": [{"value": a}]}))
    version = client.get(url).json()["meta"]["version"]
    response = client.patch(
        url,
        json=patch_body(
            {"op": "add", "path": "members", "value": [{"value": a}]},
            {"op": "remove", "path": f'members[value eq "{b}"]'},
        ),
    )
    assert response.headers["ETag"] == version

    response = client.patch(
        url, json=patch_body({"op": "add", "path": "members", "value": [{"value": "missing"}]})
    )
    assert_error(response, 400, "invalidValue")


def test_patch_with_attributes_returns_the_group(client: TestClient) -> None:
    user = create_user(client, "u@example.com")
    group = create_group(client, "Named")
    response = client.patch(
        f"{BASE}/Groups/{group['id']}",
        params={"excludedAttributes": "members"},
        json=patch_body(
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "add", "path": "members", "value": [{"value": user["id"]}]},
        ),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["displayName"] == "Renamed" and "members" not in body
    assert body["meta"]["version"] == 'W/"2"'


def test_generic_patch_paths(client: TestClient) -> None:
    user = create_user(client, "g@example.com", displayName="Gee")
    group = create_group(client, "Generic", [user["id"]])
    url = f"{BASE}/Groups/{group['id']}"
    # a filter on another sub-attribute goes through scim2-models on the full resource
    response = client.patch(
        url, json=patch_body({"op": "remove", "path": 'members[display eq "Gee"]'})
    )
    assert response.status_code == 204, response.text
    assert _members(client, group["id"]) == set()
    response = client.patch(
        url,
        json=patch_body(
            {
                "op": "replace",
                "value": {
                    "displayName": "Generic 2",
                    "members": [{"value": user["id"], "display": "x"}],
                },
            }
        ),
    )
    assert response.status_code == 204, response.text
    fetched = client.get(url).json()
    assert fetched["displayName"] == "Generic 2"
    assert [m["value"] for m in fetched["members"]] == [user["id"]]
    assert_error(
        client.patch(url, json=patch_body({"op": "remove", "path": "displayName"})),
        400,
        "mutability",
    )


def test_put_replaces_members(scim: Scim) -> None:
    client = scim.client
    a, b = (create_user(client, f"{n}@example.com")["id"] for n in "ab")
    group = create_group(client, "Put", [a])
    scim.hook.calls.clear()
    response = client.put(
        f"{BASE}/Groups/{group['id']}",
        json={"schemas": [GROUP_SCHEMA], "displayName": "Put", "members": [{"value": b}]},
    )
    assert response.status_code == 200, response.text
    assert {m["value"] for m in response.json()["members"]} == {b}
    assert scim.hook.ids() == {a, b}


def test_delete_group(scim: Scim) -> None:
    client = scim.client
    a = create_user(client, "a@example.com")["id"]
    group = create_group(client, "Doomed", [a])
    scim.hook.calls.clear()
    assert client.delete(f"{BASE}/Groups/{group['id']}").status_code == 204
    assert_error(client.get(f"{BASE}/Groups/{group['id']}"), 404)
    assert scim.hook.ids() == {a}
    assert "groups" not in client.get(f"{BASE}/Users/{a}").json()


def test_policy_groups_are_read_only(scim: Scim) -> None:
    client = scim.client
    a = create_user(client, "a@example.com")["id"]
    policy = seed_policy_group(scim.db, "entra:Finance", [a])
    fetched = client.get(f"{BASE}/Groups/{policy}").json()
    assert [m["value"] for m in fetched["members"]] == [a]
    url = f"{BASE}/Groups/{policy}"
    assert_error(
        client.patch(url, json=patch_body({"op": "remove", "path": "members"})), 400, "mutability"
    )
    assert_error(
        client.put(url, json={"schemas": [GROUP_SCHEMA], "displayName": "x"}), 400, "mutability"
    )
    assert_error(client.delete(url), 400, "mutability")
    assert _members(client, policy) == {a}


def test_group_etags(client: TestClient) -> None:
    group = create_group(client, "Tagged")
    url = f"{BASE}/Groups/{group['id']}"
    assert client.get(url, headers={"If-None-Match": group["meta"]["version"]}).status_code == 304
    body = patch_body({"op": "replace", "path": "displayName", "value": "Tagged 2"})
    assert_error(client.patch(url, json=body, headers={"If-Match": 'W/"9"'}), 412)
    assert client.patch(url, json=body, headers={"If-Match": 'W/"1"'}).status_code == 204
