"""The enterprise ``manager`` as clients send it, and what ``/Schemas`` says about it.

* RFC 7643 §4.3 calls manager's ``value`` and ``$ref`` RECOMMENDED; its schema
  representation (§8.7.1) has ``"required": false`` for both. The service builds ``$ref``
  from ``value`` on output, so a manager sent as ``{value}`` (a plain POST), as
  ``{value, displayName}`` (Okta's PUT) or as the bare id (Entra ID's PATCH) is accepted.
* RFC 7643 §7: ``uniqueness`` is ``server`` for Group ``displayName`` and enterprise
  ``employeeNumber``, which the service enforces (409 uniqueness).
"""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.scim_endpoint.helpers import (
    BASE,
    ENTERPRISE,
    GROUP_SCHEMA,
    USER_SCHEMA,
    assert_error,
    create_group,
    create_user,
    patch_body,
)

MANAGER_PATH = f"{ENTERPRISE}:manager"


def _boss(client: TestClient) -> dict[str, Any]:
    return create_user(client, "boss@example.com", displayName="The Boss")


def _manager(user: dict[str, Any]) -> dict[str, Any] | None:
    manager: dict[str, Any] | None = user.get(ENTERPRISE, {}).get("manager")
    return manager


def _expected_manager(boss: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": boss["id"],
        "$ref": f"http://testserver{BASE}/Users/{boss['id']}",
        "displayName": "The Boss",
    }


def _attribute(schema: dict[str, Any], name: str) -> dict[str, Any]:
    attribute: dict[str, Any] = next(a for a in schema["attributes"] if a["name"] == name)
    return attribute


# -- manager without $ref -------------------------------------------------------------------


def test_post_with_manager_value_only_creates_the_user_with_value_and_ref(
    client: TestClient,
) -> None:
    boss = _boss(client)
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": "a",
        ENTERPRISE: {"manager": {"value": boss["id"]}},
    }
    response = client.post(f"{BASE}/Users", json=body)
    assert response.status_code == 201, response.text
    assert _manager(response.json()) == _expected_manager(boss)
    fetched = client.get(f"{BASE}/Users/{response.json()['id']}").json()
    assert _manager(fetched) == _expected_manager(boss)


def test_okta_put_with_manager_value_and_display_name_sets_the_manager(
    client: TestClient,
) -> None:
    boss = _boss(client)
    user = create_user(client, "okta.user@example.com", displayName="Okta User")
    body = dict(user)  # Okta's full PUT: id and meta included
    body["schemas"] = [USER_SCHEMA, ENTERPRISE]
    # displayName is readOnly (RFC 7643 §4.3): what Okta sends is ignored, the server's kept.
    body[ENTERPRISE] = {"manager": {"value": boss["id"], "displayName": "Boss as Okta knows"}}
    response = client.put(f"{BASE}/Users/{user['id']}", json=body)
    assert response.status_code == 200, response.text
    assert _manager(response.json()) == _expected_manager(boss)
    assert response.json()["meta"]["version"] == 'W/"2"'
    fetched = client.get(f"{BASE}/Users/{user['id']}").json()
    assert _manager(fetched) == _expected_manager(boss)


def test_okta_repeated_put_with_the_same_manager_keeps_the_version(client: TestClient) -> None:
    boss = _boss(client)
    user = create_user(client, "okta.user@example.com", displayName="Okta User")
    body = dict(user)
    body["schemas"] = [USER_SCHEMA, ENTERPRISE]
    body[ENTERPRISE] = {"manager": {"value": boss["id"], "displayName": "The Boss"}}
    first = client.put(f"{BASE}/Users/{user['id']}", json=body)
    assert first.status_code == 200, first.text
    again = client.put(f"{BASE}/Users/{user['id']}", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["meta"]["version"] == first.json()["meta"]["version"]


def test_entra_patch_add_manager_as_a_bare_id_string_sets_the_manager(
    client: TestClient,
) -> None:
    boss = _boss(client)
    user = create_user(client, "entra.user@example.com")
    url = f"{BASE}/Users/{user['id']}"
    body = patch_body({"op": "Add", "path": MANAGER_PATH, "value": boss["id"]})
    response = client.patch(url, json=body)
    assert response.status_code == 200, response.text
    assert _manager(response.json()) == _expected_manager(boss)
    assert _manager(client.get(url).json()) == _expected_manager(boss)

    # Entra ID removes the manager with a path-only Remove.
    response = client.patch(url, json=patch_body({"op": "Remove", "path": MANAGER_PATH}))
    assert response.status_code == 200, response.text
    assert _manager(client.get(url).json()) is None


def test_entra_patch_replace_manager_with_a_value_object_sets_the_manager(
    client: TestClient,
) -> None:
    boss = _boss(client)
    other = create_user(client, "other.boss@example.com", displayName="Other Boss")
    user = create_user(client, "entra.user@example.com")
    url = f"{BASE}/Users/{user['id']}"
    body = patch_body({"op": "Add", "path": MANAGER_PATH, "value": other["id"]})
    assert client.patch(url, json=body).status_code == 200
    body = patch_body({"op": "Replace", "path": MANAGER_PATH, "value": {"value": boss["id"]}})
    response = client.patch(url, json=body)
    assert response.status_code == 200, response.text
    assert _manager(response.json()) == _expected_manager(boss)
    assert _manager(client.get(url).json()) == _expected_manager(boss)


def test_entra_patch_manager_that_is_not_an_id_is_a_400_invalid_value(
    client: TestClient,
) -> None:
    user = create_user(client, "entra.user@example.com")
    url = f"{BASE}/Users/{user['id']}"
    for value in (42, ["x"], {"value": 42}):
        body = patch_body({"op": "Add", "path": MANAGER_PATH, "value": value})
        assert_error(client.patch(url, json=body), 400, "invalidValue")
    body = {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "b"}
    body[ENTERPRISE] = {"manager": {"value": 42}}
    error = assert_error(client.post(f"{BASE}/Users", json=body), 400, "invalidValue")
    assert "manager.value" in error["detail"]
    assert client.get(url).json()["meta"]["version"] == 'W/"1"'


def test_unknown_manager_id_is_kept_as_written_with_or_without_ref(client: TestClient) -> None:
    """The service has never checked that a manager id names a user (a client may provision
    the report before the manager): ``{value}``, ``{value, $ref}`` and Entra ID's bare id are
    all stored as written, and answered with the ``$ref`` the service builds."""
    missing = "00000000-0000-0000-0000-000000000000"
    expected = {"value": missing, "$ref": f"http://testserver{BASE}/Users/{missing}"}
    for user_name, manager in (
        ("with.ref", {"value": missing, "$ref": f"http://testserver{BASE}/Users/{missing}"}),
        ("without.ref", {"value": missing}),
    ):
        body = {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": user_name}
        body[ENTERPRISE] = {"manager": manager}
        response = client.post(f"{BASE}/Users", json=body)
        assert response.status_code == 201, response.text
        assert _manager(response.json()) == expected
    user = create_user(client, "entra.user@example.com")
    body = patch_body({"op": "Add", "path": MANAGER_PATH, "value": missing})
    response = client.patch(f"{BASE}/Users/{user['id']}", json=body)
    assert response.status_code == 200, response.text
    assert _manager(response.json()) == expected


# -- /Schemas -------------------------------------------------------------------------------


def test_schemas_publish_manager_value_and_ref_as_not_required(client: TestClient) -> None:
    response = client.get(f"{BASE}/Schemas/{ENTERPRISE}")
    assert response.status_code == 200, response.text
    schema = response.json()
    assert schema["name"] == "EnterpriseUser"
    manager = _attribute(schema, "manager")
    assert manager["required"] is False
    sub = {a["name"]: a for a in manager["subAttributes"]}
    assert sub["value"]["required"] is False and sub["value"]["caseExact"] is True
    assert sub["$ref"]["required"] is False and sub["$ref"]["referenceTypes"] == ["User"]
    assert sub["displayName"]["mutability"] == "readOnly"


def test_schemas_publish_server_uniqueness_that_the_service_enforces(
    client: TestClient,
) -> None:
    listing = client.get(f"{BASE}/Schemas").json()
    schemas = {s["id"]: s for s in listing["Resources"]}
    assert _attribute(schemas[GROUP_SCHEMA], "displayName")["uniqueness"] == "server"
    assert _attribute(schemas[ENTERPRISE], "employeeNumber")["uniqueness"] == "server"
    assert _attribute(schemas[USER_SCHEMA], "userName")["uniqueness"] == "server"
    assert _attribute(schemas[USER_SCHEMA], "displayName")["uniqueness"] == "none"
    assert schemas[USER_SCHEMA]["name"] == "User"
    # RFC 7643 §8.7.1 names it "Group", whatever class the service refines it with.
    assert schemas[GROUP_SCHEMA]["name"] == "Group" and schemas[GROUP_SCHEMA]["description"] == "Group"
    group_display_name = _attribute(schemas[GROUP_SCHEMA], "displayName")
    assert group_display_name["required"] is True

    create_group(client, "Finance")
    response = client.post(
        f"{BASE}/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": "Finance"}
    )
    assert_error(response, 409, "uniqueness")
    create_user(client, "first", **{ENTERPRISE: {"employeeNumber": "E1"}})
    body = {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "second"}
    body[ENTERPRISE] = {"employeeNumber": "E1"}
    assert_error(client.post(f"{BASE}/Users", json=body), 409, "uniqueness")
