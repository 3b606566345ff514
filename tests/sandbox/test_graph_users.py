"""Users through the real msgraph-sdk: create, read, update, delete, filter, paging, sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.user import User
from msgraph.generated.users.item.user_item_request_builder import (
    UserItemRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from provisioner.sandbox.graph.app import GraphSandbox

SdkFactory = Callable[..., Awaitable[GraphServiceClient]]


def new_user(upn: str, **extra: Any) -> User:
    return User(
        account_enabled=True,
        display_name=upn.split("@")[0],
        mail_nickname=upn.split("@")[0],
        user_principal_name=upn,
        password_profile=PasswordProfile(password="Pa55-word!", force_change_password_next_sign_in=True),
        **extra,
    )


def users_query(**params: Any) -> RequestConfiguration:
    return RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**params)
    )


async def test_create_get_patch_user_via_sdk(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    created = await sdk.users.post(new_user("ada@contoso.com", employee_id="E100", department="R&D"))
    assert created is not None and created.id
    assert created.user_principal_name == "ada@contoso.com"

    select = RequestConfiguration(
        query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "accountEnabled", "employeeId", "department"]
        )
    )
    fetched = await sdk.users.by_user_id(created.id).get(select)
    assert fetched is not None
    assert (fetched.account_enabled, fetched.employee_id, fetched.department) == (True, "E100", "R&D")

    await sdk.users.by_user_id(created.id).patch(User(account_enabled=False, job_title="Engineer"))
    stored = sandbox.user(created.id)
    assert stored is not None
    assert stored["accountEnabled"] is False and stored["jobTitle"] == "Engineer"


async def test_get_without_select_returns_only_graph_default_properties(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("bo@contoso.com", employee_id="E1", account_enabled=False)
    fetched = await sdk.users.by_user_id(user_id).get()
    assert fetched is not None
    assert fetched.user_principal_name == "bo@contoso.com"
    assert fetched.account_enabled is None and fetched.employee_id is None  # not in Graph's default set


async def test_get_user_by_user_principal_name(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    user_id = sandbox.seed_user("Cy@Contoso.com")
    fetched = await sdk.users.by_user_id("cy@contoso.com").get()
    assert fetched is not None and fetched.id == user_id


async def test_duplicate_user_principal_name_is_400(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    sandbox.seed_user("dee@contoso.com")
    with pytest.raises(ODataError) as caught:
        await sdk.users.post(new_user("DEE@contoso.com"))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "Request_BadRequest"
    assert caught.value.error.message == (
        "Another object with the same value for property userPrincipalName already exists."
    )


async def test_duplicate_mail_collides_on_proxy_addresses(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    sandbox.seed_user("eve@contoso.com", mail="eve@contoso.com")
    with pytest.raises(ODataError) as caught:
        await sdk.users.post(new_user("eve2@contoso.com", mail="Eve@contoso.com"))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and "proxyAddresses" in (caught.value.error.message or "")


async def test_post_user_refuses_unknown_and_missing_properties(raw_http: httpx.AsyncClient) -> None:
    body = {
        "accountEnabled": True,
        "displayName": "Fay",
        "mailNickname": "fay",
        "userPrincipalName": "fay@contoso.com",
        "passwordProfile": {"password": "x"},
    }
    unknown = await raw_http.post("/users", json={**body, "favouriteColour": "teal"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "Request_BadRequest"
    assert "favouriteColour" in unknown.json()["error"]["message"]

    missing = await raw_http.post("/users", json={k: v for k, v in body.items() if k != "passwordProfile"})
    assert missing.status_code == 400
    assert "passwordProfile" in missing.json()["error"]["message"]

    created = await raw_http.post("/users", json=body)
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"


async def test_filter_with_and_then_page_through_next_links(sdk_for: SdkFactory) -> None:
    sandbox = GraphSandbox(page_size=2)
    sdk = await sdk_for(sandbox)
    expected = {sandbox.seed_user(f"p{i}@contoso.com", employee_id=f"P{i}") for i in range(5)}
    sandbox.seed_user("p9@contoso.com", account_enabled=False)
    sandbox.seed_user("q1@contoso.com")

    query = users_query(
        filter="startswith(userPrincipalName,'p') and accountEnabled eq true", select=["id", "employeeId"]
    )
    page = await sdk.users.get(query)
    seen: list[str] = []
    pages = 0
    while page is not None:
        pages += 1
        seen.extend(user.id for user in page.value or [] if user.id)
        if not page.odata_next_link:
            break
        assert page.odata_next_link.startswith("http://127.0.0.1/v1.0/users?")
        assert "$skiptoken=" in page.odata_next_link
        page = await sdk.users.with_url(page.odata_next_link).get()
    assert pages == 3
    assert set(seen) == expected and len(seen) == 5


async def test_filter_eq_unescapes_quotes_and_in_lists(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    obrien = sandbox.seed_user("obrien@contoso.com", employee_id="O'Brien")
    other = sandbox.seed_user("zed@contoso.com", employee_id="Z1")
    sandbox.seed_user("nobody@contoso.com", employee_id="N1")

    page = await sdk.users.get(users_query(filter="employeeId eq 'O''Brien'", select=["id"]))
    assert page is not None and [user.id for user in page.value or []] == [obrien]

    page = await sdk.users.get(users_query(filter="employeeId in ('o''brien', 'Z1')", select=["id"]))
    assert page is not None and {user.id for user in page.value or []} == {obrien, other}


async def test_filter_on_unsupported_property_is_400(raw_http: httpx.AsyncClient) -> None:
    response = await raw_http.get("/users", params={"$filter": "passwordProfile eq 'x'"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


async def test_revoke_sign_in_sessions_via_sdk(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    user_id = sandbox.seed_user("gus@contoso.com")
    assert sandbox.sessions_revoked_at(user_id) is None
    result = await sdk.users.by_user_id(user_id).revoke_sign_in_sessions.post()
    assert result is not None and result.value is True
    revoked = sandbox.sessions_revoked_at(user_id)
    assert revoked is not None
    stored = sandbox.user(user_id)
    assert stored is not None
    assert stored["signInSessionsValidFromDateTime"] == revoked.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_revoke_sign_in_sessions_raw_body(raw_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    user_id = sandbox.seed_user("hal@contoso.com")
    response = await raw_http.post(f"/users/{user_id}/revokeSignInSessions")
    assert response.status_code == 200
    assert response.json() == {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
        "value": True,
    }


async def test_member_of_lists_groups_including_the_group_cast(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("ivy@contoso.com")
    groups = {sandbox.seed_group(f"G{i}") for i in range(3)}
    sandbox.seed_group("Unrelated")
    for group_id in groups:
        sandbox.add_member_directly(group_id, user_id)

    page = await sdk.users.by_user_id(user_id).member_of.get()
    assert page is not None
    assert {obj.id for obj in page.value or []} == groups
    assert all(obj.odata_type == "#microsoft.graph.group" for obj in page.value or [])

    cast = await sdk.users.by_user_id(user_id).member_of.graph_group.get()
    assert cast is not None and {group.id for group in cast.value or []} == groups


async def test_delete_user_drops_memberships_and_then_404(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("jon@contoso.com")
    group_id = sandbox.seed_group("Staff")
    sandbox.add_member_directly(group_id, user_id)

    await sdk.users.by_user_id(user_id).delete()
    assert sandbox.user(user_id) is None
    assert sandbox.group_member_ids(group_id) == set()
    with pytest.raises(ODataError) as caught:
        await sdk.users.by_user_id(user_id).get()
    assert caught.value.response_status_code == 404
    assert caught.value.error is not None and caught.value.error.code == "Request_ResourceNotFound"


async def test_set_and_read_manager_via_sdk(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    report = sandbox.seed_user("kim@contoso.com")
    boss = sandbox.seed_user("lee@contoso.com")
    await sdk.users.by_user_id(report).manager.ref.put(
        ReferenceUpdate(odata_id=f"https://graph.microsoft.com/v1.0/users/{boss}")
    )
    manager = await sdk.users.by_user_id(report).manager.get()
    assert manager is not None and manager.id == boss
    await sdk.users.by_user_id(report).manager.ref.delete()
    with pytest.raises(ODataError) as caught:
        await sdk.users.by_user_id(report).manager.get()
    assert caught.value.response_status_code == 404
