"""The user's HR properties and the manager reference, as Graph documents and checks them
(user resource v1.0, user-post-manager, user-delete-manager; graph.md "Directory data rules")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from provisioner.sandbox.graph.app import GraphSandbox

JSON = {"Content-Type": "application/json"}
USER = {"accountEnabled": True, "displayName": "Ada", "mailNickname": "ada",
        "userPrincipalName": "ada@contoso.com", "passwordProfile": {"password": "Pa55-word!"}}


def ref(user_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{user_id}"}


async def test_hr_properties_are_stored_read_back_and_cleared_with_null(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    body = {**USER, "employeeHireDate": "2026-03-01T00:00:00Z", "employeeLeaveDateTime": "2027-02-28T00:00:00Z",
            "employeeOrgData": {"costCenter": "CC-1", "division": "Research"}, "companyName": "Contoso",
            "employeeType": "Employee", "officeLocation": "Berlin"}
    created = await raw_http.post("/users", json=body)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    got = await raw_http.get(f"/users/{user_id}", params={
        "$select": "employeeHireDate,employeeLeaveDateTime,employeeOrgData,companyName,employeeType,officeLocation"})
    assert got.json()["employeeOrgData"] == {"costCenter": "CC-1", "division": "Research"}
    assert got.json()["employeeHireDate"] == "2026-03-01T00:00:00Z"
    # An omitted field of employeeOrgData becomes null (the object is replaced whole).
    assert (await raw_http.patch(f"/users/{user_id}", json={"employeeOrgData": {"costCenter": "CC-2"},
                                                             "employeeLeaveDateTime": None,
                                                             "companyName": None})).status_code == 204
    stored = sandbox.user(user_id)
    assert stored["employeeOrgData"] == {"costCenter": "CC-2", "division": None}
    assert stored["employeeLeaveDateTime"] is None and stored["companyName"] is None
    assert stored["employeeHireDate"] == "2026-03-01T00:00:00Z"


@pytest.mark.parametrize(("prop", "value", "message"), [
    ("employeeHireDate", "2026-03-01", "Edm.DateTimeOffset"),
    ("employeeHireDate", "01/03/2026", "Edm.DateTimeOffset"),
    ("employeeLeaveDateTime", "2026-02-30T00:00:00Z", "Edm.DateTimeOffset"),
    ("employeeLeaveDateTime", 20260301, "Edm.DateTimeOffset"),
    ("employeeOrgData", "CC-1", "employeeOrgData"),
    ("employeeOrgData", {"costCentre": "CC-1"}, "employeeOrgData"),
    ("employeeOrgData", {"costCenter": 7}, "employeeOrgData"),
    ("companyName", "C" * 65, "companyName"),
    ("employeeType", 3, "employeeType"),
])
async def test_malformed_hr_properties_are_refused_like_graph(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox, prop: str, value: Any, message: str
) -> None:
    created = await raw_http.post("/users", json={**USER, prop: value})
    assert created.status_code == 400
    assert message in created.json()["error"]["message"]
    assert not sandbox._directory.users  # nothing half-stored
    user_id = sandbox.seed_user("bob@contoso.com")
    patched = await raw_http.patch(f"/users/{user_id}", json={prop: value})
    assert patched.status_code == 400 and message in patched.json()["error"]["message"]


async def test_company_name_of_64_characters_is_accepted(raw_http: httpx.AsyncClient) -> None:
    assert (await raw_http.post("/users", json={**USER, "companyName": "C" * 64})).status_code == 201


async def test_manager_reference_put_get_delete(raw_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    boss = sandbox.seed_user("boss@contoso.com")
    report = sandbox.seed_user("report@contoso.com")
    none = await raw_http.get(f"/users/{report}/manager")
    assert none.status_code == 404 and none.json()["error"]["code"] == "Request_ResourceNotFound"
    assert (await raw_http.put(f"/users/{report}/manager/$ref", json=ref(boss))).status_code == 204
    got = await raw_http.get(f"/users/{report}/manager")
    assert got.status_code == 200 and got.json()["id"] == boss
    assert got.json()["@odata.type"] == "#microsoft.graph.user"
    missing = await raw_http.put(f"/users/{report}/manager/$ref", json=ref("00000000-0000-0000-0000-000000000000"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    assert sandbox.manager_of(report) == boss  # unchanged by the refused one
    assert (await raw_http.delete(f"/users/{report}/manager/$ref")).status_code == 204
    assert (await raw_http.get(f"/users/{report}/manager")).status_code == 404
    assert (await raw_http.delete(f"/users/{report}/manager/$ref")).status_code == 404


async def test_manager_deleted_leaves_no_dangling_reference(raw_http: httpx.AsyncClient,
                                                            sandbox: GraphSandbox) -> None:
    boss = sandbox.seed_user("boss@contoso.com")
    report = sandbox.seed_user("report@contoso.com")
    await raw_http.put(f"/users/{report}/manager/$ref", json=ref(boss))
    assert (await raw_http.delete(f"/users/{boss}")).status_code == 204
    gone = await raw_http.get(f"/users/{report}/manager")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "Request_ResourceNotFound"


async def test_manager_reference_inside_batch(raw_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    boss = sandbox.seed_user("boss@contoso.com")
    report = sandbox.seed_user("report@contoso.com")
    other = sandbox.seed_user("other@contoso.com")
    sandbox.reset_stats()
    requests = [
        {"id": "1", "method": "PUT", "url": f"/users/{report}/manager/$ref", "headers": JSON, "body": ref(boss)},
        {"id": "2", "method": "DELETE", "url": f"/users/{other}/manager/$ref"},
        {"id": "3", "method": "PATCH", "url": f"/users/{other}", "headers": JSON,
         "body": {"employeeHireDate": "not a date"}},
    ]
    response = await raw_http.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    answers = {item["id"]: item for item in response.json()["responses"]}
    assert answers["1"]["status"] == 204
    assert answers["2"]["status"] == 404  # no manager to remove
    assert answers["3"]["status"] == 400
    assert sandbox.manager_of(report) == boss
    people = await raw_http.get("http://127.0.0.1/_sandbox/people")
    assert people.json()[report]["manager"] == boss and people.json()[other]["manager"] is None
