"""/Users: create, read, replace, patch, delete, uniqueness, ETags, HR-owned attributes."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from provisioner.identities.models import Identity
from tests.scim_endpoint.helpers import (
    BASE,
    ENTERPRISE,
    Scim,
    assert_error,
    create_group,
    create_user,
    patch_body,
    seed_hr_identity,
    seed_policy_group,
    user_body,
)


def test_create_read_and_location(scim: Scim) -> None:
    client = scim.client
    response = client.post(
        f"{BASE}/Users",
        json=user_body(
            "bjensen@example.com",
            name={"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"},
            phoneNumbers=[{"value": "+1 555 0100", "type": "work"}],
            **{ENTERPRISE: {"employeeNumber": "701984", "organization": "Example"}},
        ),
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/scim+json"
    user = response.json()
    location = f"http://testserver{BASE}/Users/{user['id']}"
    assert response.headers["Location"] == location
    assert response.headers["ETag"] == 'W/"1"' == user["meta"]["version"]
    assert user["meta"]["location"] == location and user["meta"]["resourceType"] == "User"
    assert user["name"] == {"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"}
    assert user[ENTERPRISE] == {"employeeNumber": "701984", "organization": "Example"}
    assert "active" not in user  # not given: unassigned, the identity is active
    again = client.get(f"{BASE}/Users/{user['id']}").json()
    assert again == user
    with scim.db.transaction() as session:
        row = session.get(Identity, user["id"])
        assert row is not None
        assert (row.source, row.state, row.employee_id) == ("scim", "active", "701984")
        assert row.active is True
    assert scim.hook.calls == [(user["id"], "scim")]


def test_duplicate_user_name_is_409_case_insensitively(client: TestClient) -> None:
    create_user(client, "dup@example.com")
    assert_error(client.post(f"{BASE}/Users", json=user_body("DUP@example.com")), 409, "uniqueness")
    other = create_user(client, "other@example.com")
    body = patch_body({"op": "replace", "path": "userName", "value": "Dup@Example.com"})
    assert_error(client.patch(f"{BASE}/Users/{other['id']}", json=body), 409, "uniqueness")


def test_duplicate_employee_number_is_409(client: TestClient) -> None:
    create_user(client, "a@example.com", **{ENTERPRISE: {"employeeNumber": "42"}})
    response = client.post(
        f"{BASE}/Users", json=user_body("b@example.com", **{ENTERPRISE: {"employeeNumber": "42"}})
    )
    assert_error(response, 409, "uniqueness")


def test_invalid_bodies(client: TestClient) -> None:
    assert_error(client.post(f"{BASE}/Users", json={"schemas": [], "x": 1}), 400)
    assert_error(client.post(f"{BASE}/Users", json=user_body("a", active="maybe")), 400)
    response = client.post(
        f"{BASE}/Users", content=b"{not json", headers={"content-type": "application/scim+json"}
    )
    assert_error(response, 400, "invalidSyntax")
    response = client.post(f"{BASE}/Users", content=b"a", headers={"content-type": "text/plain"})
    assert_error(response, 415)
    assert_error(
        client.post(
            f"{BASE}/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}
        ),
        400,
    )  # userName is required


def test_etags_if_match_and_if_none_match(client: TestClient) -> None:
    user = create_user(client, "etag@example.com")
    url = f"{BASE}/Users/{user['id']}"
    response = client.get(url, headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304 and response.headers["ETag"] == 'W/"1"'
    assert client.get(url, headers={"If-None-Match": 'W/"7"'}).status_code == 200
    body = patch_body({"op": "replace", "path": "title", "value": "CTO"})
    assert_error(client.patch(url, json=body, headers={"If-Match": 'W/"7"'}), 412)
    response = client.patch(url, json=body, headers={"If-Match": 'W/"1"'})
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"2"' == response.json()["meta"]["version"]
    # the same PATCH again changes nothing: same version (RFC 7644 §3.14)
    assert client.patch(url, json=body).headers["ETag"] == 'W/"2"'
    put = user_body("etag@example.com", title="CEO")
    assert_error(client.put(url, json=put, headers={"If-Match": 'W/"1"'}), 412)
    assert client.put(url, json=put, headers={"If-Match": '"2"'}).status_code == 200
    assert_error(client.delete(url, headers={"If-Match": 'W/"2"'}), 412)
    assert client.delete(url, headers={"If-Match": "*"}).status_code == 204


def test_put_replaces_and_ignores_read_only(client: TestClient) -> None:
    user = create_user(client, "put@example.com", title="Dev", nickName="P")
    body = dict(user)  # Okta: full PUT with id and meta
    body["displayName"] = "Put Person"
    del body["title"]
    body["id"] = "something-else"
    response = client.put(f"{BASE}/Users/{user['id']}", json=body)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["id"] == user["id"]
    assert replaced["displayName"] == "Put Person"
    assert "title" not in replaced  # PUT: what is left out is removed (RFC 7644 §3.5.1)
    assert replaced["meta"]["version"] == 'W/"2"'


def test_patch_operations(scim: Scim) -> None:
    client = scim.client
    user = create_user(
        client, "patch@example.com", emails=[{"value": "p@example.com", "type": "work"}]
    )
    url = f"{BASE}/Users/{user['id']}"
    body = patch_body(
        {"op": "add", "path": "phoneNumbers", "value": [{"value": "123", "type": "mobile"}]},
        {"op": "replace", "path": "name.givenName", "value": "Pat"},
        {"op": "remove", "path": "emails"},
    )
    response = client.patch(url, json=body)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["phoneNumbers"] == [{"value": "123", "type": "mobile"}]
    assert patched["name"] == {"givenName": "Pat"}
    assert "emails" not in patched
    assert_error(
        client.patch(url, json=patch_body({"op": "replace", "path": "id", "value": "x"})),
        400,
        "mutability",
    )
    assert_error(
        client.patch(url, json=patch_body({"op": "replace", "path": "nope", "value": 1})), 400
    )
    assert_error(client.patch(url, json=patch_body({"op": "move", "path": "title"})), 400)
    assert_error(client.patch(url, json={"schemas": []}), 400)


def test_attributes_and_excluded_attributes(client: TestClient) -> None:
    user = create_user(client, "attrs@example.com", title="T", displayName="D")
    url = f"{BASE}/Users/{user['id']}"
    only = client.get(url, params={"attributes": "title,name.givenName"}).json()
    assert set(only) == {"schemas", "id", "title"}
    without = client.get(url, params={"excludedAttributes": "title,meta"}).json()
    assert "title" not in without and "meta" not in without and without["displayName"] == "D"
    listed = client.get(f"{BASE}/Users", params={"attributes": "userName"}).json()
    assert listed["Resources"] == [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": user["id"],
            "userName": "attrs@example.com",
        }
    ]


def test_delete_is_404_afterwards_and_frees_the_user_name(scim: Scim) -> None:
    client = scim.client
    user = create_user(client, "gone@example.com", **{ENTERPRISE: {"employeeNumber": "9"}})
    group = create_group(client, "Team", [user["id"]])
    url = f"{BASE}/Users/{user['id']}"
    assert client.delete(url).status_code == 204
    assert_error(client.get(url), 404)
    assert_error(
        client.patch(url, json=patch_body({"op": "replace", "path": "title", "value": "x"})), 404
    )
    assert_error(client.delete(url), 404)
    assert (
        client.get(f"{BASE}/Users", params={"filter": 'userName eq "gone@example.com"'}).json()[
            "totalResults"
        ]
        == 0
    )
    assert "members" not in client.get(f"{BASE}/Groups/{group['id']}").json()
    again = create_user(client, "gone@example.com", **{ENTERPRISE: {"employeeNumber": "9"}})
    assert again["id"] != user["id"]
    with scim.db.transaction() as session:
        row = session.get(Identity, user["id"])
        assert row is not None  # kept for the planner's revocation and for history
        assert (row.active, row.state, row.user_name) == (False, "terminated", None)
        assert row.extra["scim"]["deleted"]["userName"] == "gone@example.com"
    assert scim.hook.calls.count((user["id"], "scim")) >= 3  # create, group join, delete


def test_hr_users_keep_hr_owned_attributes_read_only(scim: Scim) -> None:
    client = scim.client
    manager = seed_hr_identity(
        scim.db, employee_id="E1", user_name="boss@example.com", display_name="The Boss"
    )
    hr_id = seed_hr_identity(
        scim.db,
        employee_id="E2",
        user_name="worker@example.com",
        given_name="Wendy",
        family_name="Worker",
        display_name="Wendy Worker",
        email="wendy@example.com",
        title="Analyst",
        department="Finance",
        cost_center="CC1",
        employment_type="full_time",
        manager_employee_id="E1",
    )
    url = f"{BASE}/Users/{hr_id}"
    user = client.get(url).json()
    assert user["userType"] == "full_time"
    assert user["emails"] == [{"value": "wendy@example.com", "type": "work", "primary": True}]
    assert user[ENTERPRISE]["manager"]["value"] == manager
    assert user[ENTERPRISE]["manager"]["displayName"] == "The Boss"
    assert user[ENTERPRISE]["costCenter"] == "CC1"

    for path, value in [
        ("title", "Boss"),
        ("name.givenName", "W"),
        ("displayName", "X"),
        ("userName", "new@example.com"),
        ("active", False),
        ("userType", "contractor"),
        ('emails[type eq "work"].value', "other@example.com"),
        (f"{ENTERPRISE}:department", "IT"),
        (f"{ENTERPRISE}:employeeNumber", "E9"),
        (f"{ENTERPRISE}:manager", {"value": hr_id}),
    ]:
        body = patch_body({"op": "replace", "path": path, "value": value})
        assert_error(client.patch(url, json=body), 400, "mutability")

    # Writable attributes of an HR user: phone numbers, addresses, externalId...
    body = patch_body(
        {"op": "add", "path": "phoneNumbers", "value": [{"value": "555", "type": "work"}]},
        {"op": "replace", "path": "externalId", "value": "ext-1"},
        {"op": "replace", "path": "title", "value": "Analyst"},  # same value: not a change
    )
    response = client.patch(url, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["phoneNumbers"] == [{"value": "555", "type": "work"}]
    assert response.json()["externalId"] == "ext-1"

    # PUT leaving HR attributes out keeps them; changing one is refused.
    response = client.put(url, json=user_body("worker@example.com", locale="fr-FR"))
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Analyst" and response.json()["locale"] == "fr-FR"
    assert_error(
        client.put(url, json=user_body("worker@example.com", title="Boss")), 400, "mutability"
    )
    assert_error(client.delete(url), 400, "mutability")
    with scim.db.transaction() as session:
        row = session.scalars(select(Identity).where(Identity.id == hr_id)).one()
        assert (row.title, row.source, row.email) == ("Analyst", "hr", "wendy@example.com")


def test_user_groups_attribute(scim: Scim) -> None:
    client = scim.client
    user = create_user(client, "member@example.com")
    group = create_group(client, "Readers", [user["id"]])
    policy = seed_policy_group(scim.db, "entra:All Staff", [user["id"]])
    fetched = client.get(f"{BASE}/Users/{user['id']}").json()
    assert sorted((g["value"], g["display"]) for g in fetched["groups"]) == sorted(
        [(group["id"], "Readers"), (policy, "entra:All Staff")]
    )
    assert fetched["groups"][0]["$ref"].startswith(f"http://testserver{BASE}/Groups/")
    excluded = client.get(f"{BASE}/Users/{user['id']}", params={"excludedAttributes": "groups"})
    assert "groups" not in excluded.json()
    body = patch_body({"op": "add", "path": "groups", "value": [{"value": group["id"]}]})
    assert_error(client.patch(f"{BASE}/Users/{user['id']}", json=body), 400, "mutability")


def test_unknown_paths_and_methods_are_scim_errors(client: TestClient) -> None:
    assert_error(client.get(f"{BASE}/Nope"), 404)
    assert_error(client.get(f"{BASE}/Users/does-not-exist"), 404)
    assert_error(client.delete(f"{BASE}/Users"), 405)
    assert_error(client.put(f"{BASE}/Users/x", json=user_body("x")), 404)
