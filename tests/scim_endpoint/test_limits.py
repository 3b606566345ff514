"""The SCIM endpoint's limits: filters too deep or too long are ``400 invalidFilter``, values
longer than their column are ``400 invalidValue`` naming the attribute, on POST, PUT, PATCH and
``/Bulk``, and nothing is stored. Both were 500s (a RecursionError; PostgreSQL refusing the
value), so every test runs on both engines, and the values at the limit are stored whole."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from provisioner.scim.config import MAX_BODY_DEPTH, MAX_FILTER_DEPTH, MAX_FILTER_TERMS
from provisioner.scim.lengths import USER_ATTRIBUTES, max_lengths
from provisioner.scim.schemas import UserResource, split_user
from tests.scim_endpoint.helpers import (
    BASE,
    BULK_SCHEMA,
    ENTERPRISE,
    GROUP_SCHEMA,
    SEARCH_SCHEMA,
    USER_SCHEMA,
    Scim,
    assert_error,
    create_group,
    create_user,
    patch_body,
    seed_hr_identity,
)

USER_LIMITS = max_lengths()["User"]
GROUP_LIMITS = max_lengths()["Group"]
WORK_EMAIL = 'emails[type eq "work"].value'
# Every column-backed User attribute a client writes as a plain string (an e-mail address is
# bounded first by its own syntax: 254 characters).
STRING_ATTRIBUTES = sorted(a for a in USER_LIMITS if a != WORK_EMAIL)


def _nested(depth: int, inner: str = 'userName eq "a@example.com"') -> str:
    return "(" * depth + inner + ")" * depth


def _chain(terms: int, last: str = "a@example.com") -> str:
    return " or ".join([f'userName eq "nobody{i}@example.com"' for i in range(terms - 1)]
                       + [f'userName eq "{last}"'])


def _user_with(attribute: str, value: str, user_name: str = "u@example.com") -> dict[str, Any]:
    """A User body setting one attribute by its SCIM path."""
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user_name}
    if attribute.startswith(ENTERPRISE):
        body["schemas"].append(ENTERPRISE)
        body[ENTERPRISE] = {attribute[len(ENTERPRISE) + 1 :]: value}
    elif attribute.startswith("name."):
        body["name"] = {attribute[len("name.") :]: value}
    else:
        body[attribute] = value
    return body


def _count(client: TestClient, path: str) -> int:
    return client.get(f"{BASE}{path}").json()["totalResults"]


# -- filters ---------------------------------------------------------------------------------


ABUSIVE_FILTERS = {
    "500 nested parentheses": _nested(500),
    "2,000-term or chain": " or ".join(f'id eq "{i}"' for i in range(2000)),  # fits a URL
    "2,000-term and chain": " and ".join(['userName pr'] * 2000),
    "500 nested not": "not (" * 500 + 'userName eq "a"' + ")" * 500,
    "one term too many": _chain(MAX_FILTER_TERMS + 1),
    "one level too deep": _nested(MAX_FILTER_DEPTH + 1),
    "value path too long": "emails[" + " or ".join(['value pr'] * (MAX_FILTER_TERMS + 1)) + "]",
}


@pytest.mark.parametrize("name", sorted(ABUSIVE_FILTERS))
@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_an_abusive_filter_is_invalid_filter_on_every_query_route(
    client: TestClient, name: str, resource: str
) -> None:
    text = ABUSIVE_FILTERS[name]
    if resource == "Groups":
        text = text.replace("userName", "displayName").replace("emails[", "members[")
    search = {"schemas": [SEARCH_SCHEMA], "filter": text}
    answers = [
        client.get(f"{BASE}/{resource}", params={"filter": text}),
        client.post(f"{BASE}/{resource}/.search", json=search),
    ]
    if resource == "Users":
        answers.append(client.post(f"{BASE}/.search", json=search))
    for response in answers:
        error = assert_error(response, 400, "invalidFilter")
        assert (f"more than {MAX_FILTER_TERMS} comparisons" in error["detail"]
                or f"more than {MAX_FILTER_DEPTH} deep" in error["detail"]), error


def test_filters_at_the_limits_are_answered(client: TestClient) -> None:
    user = create_user(client, "a@example.com")
    create_user(client, "b@example.com")
    for text in (_chain(MAX_FILTER_TERMS), _nested(MAX_FILTER_DEPTH),
                 _nested(MAX_FILTER_DEPTH - 1, _chain(MAX_FILTER_TERMS))):
        for response in (client.get(f"{BASE}/Users", params={"filter": text}),
                         client.post(f"{BASE}/Users/.search",
                                     json={"schemas": [SEARCH_SCHEMA], "filter": text})):
            assert response.status_code == 200, response.text[:300]
            assert [r["id"] for r in response.json()["Resources"]] == [user["id"]]


def test_a_body_nested_too_deep_is_invalid_syntax(client: TestClient) -> None:
    for depth in (MAX_BODY_DEPTH + 1, 100_000):
        deep = "[" * depth + "]" * depth
        body = f'{{"schemas": ["{USER_SCHEMA}"], "userName": "deep@example.com", "x": {deep}}}'
        for path in ("/Users", "/Bulk", "/Users/.search"):
            response = client.post(f"{BASE}{path}", content=body.encode(),
                                   headers={"Content-Type": "application/scim+json"})
            error = assert_error(response, 400, "invalidSyntax")
            assert f"more than {MAX_BODY_DEPTH} deep" in error["detail"]
    assert _count(client, "/Users") == 0


# -- value lengths -------------------------------------------------------------------------------


def test_every_column_a_user_writes_has_its_limit() -> None:
    """A column added to split_user without a limit would be a 500 on PostgreSQL again."""
    user = UserResource.model_validate(_user_with("userName", "x"))
    columns = set(split_user(user).columns) - {"active"}
    assert columns | {"external_id"} == set(USER_ATTRIBUTES)
    assert USER_LIMITS["displayName"] == 400 and USER_LIMITS["userName"] == 256  # the issue's


def test_the_readme_states_the_lengths_the_columns_have() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for resource, limits in max_lengths().items():
        [row] = re.findall(rf"^\| {resource} \|(.*)\|$", readme, flags=re.MULTILINE)
        stated = {name: int(n) for name, n in re.findall(r"`([^`]+)` (\d+)", row)}
        assert stated == {a.rpartition(":")[2]: n for a, n in limits.items()}


@pytest.mark.parametrize("attribute", STRING_ATTRIBUTES)
def test_a_user_value_at_its_limit_is_stored_and_one_more_is_refused(
    client: TestClient, attribute: str
) -> None:
    limit = USER_LIMITS[attribute]
    too_long = "y" * (limit + 1)
    over = _user_with(attribute, too_long, user_name="over@example.com" if attribute != "userName" else too_long)
    error = assert_error(client.post(f"{BASE}/Users", json=over), 400, "invalidValue")
    assert error["detail"].startswith(f"{attribute} is {limit + 1} characters long")
    assert f"at most {limit}" in error["detail"]
    assert _count(client, "/Users") == 0

    exact = "x" * limit
    response = client.post(f"{BASE}/Users", json=_user_with(attribute, exact, user_name="at@example.com")
                           if attribute != "userName" else _user_with(attribute, exact, user_name=exact))
    assert response.status_code == 201, response.text[:300]
    read = client.get(f"{BASE}/Users/{response.json()['id']}").json()
    assert exact in json.dumps(read)  # stored whole, not truncated


@pytest.mark.parametrize("attribute", ["displayName", "userName", "name.familyName",
                                       f"{ENTERPRISE}:employeeNumber", "externalId"])
def test_put_and_patch_refuse_an_over_long_value_and_change_nothing(
    client: TestClient, attribute: str
) -> None:
    user = create_user(client, "kept@example.com", displayName="Kept")
    too_long = "z" * (USER_LIMITS[attribute] + 1)
    put = _user_with(attribute, too_long, user_name="kept@example.com" if attribute != "userName" else too_long)
    error = assert_error(client.put(f"{BASE}/Users/{user['id']}", json=put), 400, "invalidValue")
    assert error["detail"].startswith(f"{attribute} is ")
    patched = client.patch(f"{BASE}/Users/{user['id']}",
                           json=patch_body({"op": "replace", "path": attribute, "value": too_long}))
    assert assert_error(patched, 400, "invalidValue")["detail"].startswith(f"{attribute} is ")
    pathless = {k: v for k, v in put.items() if k not in ("schemas",)}
    patched = client.patch(f"{BASE}/Users/{user['id']}",
                           json=patch_body({"op": "replace", "value": pathless}))
    assert assert_error(patched, 400, "invalidValue")["detail"].startswith(f"{attribute} is ")
    after = client.get(f"{BASE}/Users/{user['id']}").json()
    assert after["meta"]["version"] == user["meta"]["version"]
    assert after["userName"] == "kept@example.com" and after["displayName"] == "Kept"


def test_an_hr_users_external_id_is_limited_too(scim: Scim) -> None:
    user_id = seed_hr_identity(scim.db, employee_id="E1", user_name="hr@example.com")
    too_long = "e" * (USER_LIMITS["externalId"] + 1)
    patched = scim.client.patch(f"{BASE}/Users/{user_id}",
                                json=patch_body({"op": "replace", "path": "externalId", "value": too_long}))
    assert assert_error(patched, 400, "invalidValue")["detail"].startswith("externalId is ")
    assert "externalId" not in scim.client.get(f"{BASE}/Users/{user_id}").json()


@pytest.mark.parametrize("attribute", sorted(GROUP_LIMITS))
def test_group_values_are_limited_on_post_put_and_patch(client: TestClient, attribute: str) -> None:
    limit = GROUP_LIMITS[attribute]
    too_long = "g" * (limit + 1)

    def group(value: str, name: str) -> dict[str, Any]:
        body = {"schemas": [GROUP_SCHEMA], "displayName": name}
        body[attribute] = value
        return body

    error = assert_error(client.post(f"{BASE}/Groups", json=group(too_long, "over")), 400, "invalidValue")
    assert error["detail"] == f"{attribute} is {limit + 1} characters long; at most {limit} are stored"
    assert _count(client, "/Groups") == 0
    kept = create_group(client, "kept", **({} if attribute == "displayName" else {attribute: "x" * limit}))
    assert_error(client.put(f"{BASE}/Groups/{kept['id']}", json=group(too_long, "kept")), 400, "invalidValue")
    patched = client.patch(f"{BASE}/Groups/{kept['id']}",
                           json=patch_body({"op": "replace", "path": attribute, "value": too_long}))
    assert assert_error(patched, 400, "invalidValue")["detail"].startswith(f"{attribute} is ")
    after = client.get(f"{BASE}/Groups/{kept['id']}").json()
    assert after["displayName"] == "kept" and after["meta"]["version"] == kept["meta"]["version"]
    exact = create_group(client, "y" * limit if attribute == "displayName" else "exact",
                         **({} if attribute == "displayName" else {attribute: "y" * limit}))
    assert client.get(f"{BASE}/Groups/{exact['id']}").json()[attribute] == "y" * limit


def test_bulk_refuses_each_over_long_operation_and_runs_the_others(client: TestClient) -> None:
    existing = create_user(client, "existing@example.com")
    group = create_group(client, "existing-group")
    long_name = "n" * (USER_LIMITS["userName"] + 1)
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": "long",
         "data": {"schemas": [USER_SCHEMA], "userName": long_name}},
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [GROUP_SCHEMA], "displayName": "d" * (GROUP_LIMITS["displayName"] + 1)}},
        {"method": "PATCH", "path": f"/Users/{existing['id']}",
         "data": patch_body({"op": "replace", "path": "title", "value": "t" * (USER_LIMITS["title"] + 1)})},
        {"method": "PUT", "path": f"/Groups/{group['id']}",
         "data": {"schemas": [GROUP_SCHEMA], "displayName": "existing-group",
                  "externalId": "x" * (GROUP_LIMITS["externalId"] + 1)}},
        {"method": "POST", "path": "/Users", "bulkId": "ok",
         "data": {"schemas": [USER_SCHEMA], "userName": "fine@example.com", "displayName": "d" * 400}},
    ]
    response = client.post(f"{BASE}/Bulk", json={"schemas": [BULK_SCHEMA], "Operations": operations})
    assert response.status_code == 200, response.text
    results = response.json()["Operations"]
    assert [int(r["status"]) for r in results] == [400, 400, 400, 400, 201]
    named = ["userName", "displayName", "title", "externalId"]
    for result, attribute in zip(results, named, strict=False):
        assert result["response"]["scimType"] == "invalidValue"
        assert result["response"]["detail"].startswith(f"{attribute} is ")
    users = client.get(f"{BASE}/Users").json()["Resources"]
    assert sorted(u["userName"] for u in users) == ["existing@example.com", "fine@example.com"]
    assert "title" not in client.get(f"{BASE}/Users/{existing['id']}").json()
    assert [g["displayName"] for g in client.get(f"{BASE}/Groups").json()["Resources"]] == ["existing-group"]
    assert "externalId" not in client.get(f"{BASE}/Groups/{group['id']}").json()
