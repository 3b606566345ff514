"""Group membership through the real msgraph-sdk: members@odata.bind, $ref add and remove."""

from __future__ import annotations

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.members.members_request_builder import (
    MembersRequestBuilder,
)
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.reference_create import ReferenceCreate

from provisioner.sandbox.graph.app import GraphSandbox

ALREADY_EXISTS = (
    "One or more added object references already exist for the following modified properties: 'members'."
)


def bind(*user_ids: str, host: str = "https://graph.microsoft.com/v1.0") -> Group:
    return Group(
        additional_data={"members@odata.bind": [f"{host}/directoryObjects/{uid}" for uid in user_ids]}
    )


def seed_users(sandbox: GraphSandbox, count: int, prefix: str = "u") -> list[str]:
    return [sandbox.seed_user(f"{prefix}{i}@contoso.com") for i in range(count)]


async def test_members_odata_bind_adds_twenty_at_once(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    group_id = sandbox.seed_group("Engineering")
    users = seed_users(sandbox, 20)
    sandbox.reset_stats()
    await sdk.groups.by_group_id(group_id).patch(bind(*users))
    assert sandbox.group_member_ids(group_id) == set(users)
    assert (sandbox.stats.http_calls, sandbox.stats.writes) == (1, 1)


async def test_members_odata_bind_over_twenty_is_400_and_applies_nothing(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    group_id = sandbox.seed_group("Engineering")
    users = seed_users(sandbox, 21)
    with pytest.raises(ODataError) as caught:
        await sdk.groups.by_group_id(group_id).patch(bind(*users))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "Request_BadRequest"
    assert sandbox.group_member_ids(group_id) == set()


async def test_members_odata_bind_with_an_existing_member_is_400_and_applies_nothing(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    group_id = sandbox.seed_group("Engineering")
    existing, *new = seed_users(sandbox, 4)
    sandbox.add_member_directly(group_id, existing)
    with pytest.raises(ODataError) as caught:
        await sdk.groups.by_group_id(group_id).patch(bind(*new, existing))
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "Request_BadRequest"
    assert caught.value.error.message == ALREADY_EXISTS
    assert sandbox.group_member_ids(group_id) == {existing}


async def test_members_odata_bind_with_an_unknown_object_is_404_and_applies_nothing(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    group_id = sandbox.seed_group("Engineering")
    users = seed_users(sandbox, 2)
    with pytest.raises(ODataError) as caught:
        await sdk.groups.by_group_id(group_id).patch(bind(*users, "00000000-0000-0000-0000-000000000000"))
    assert caught.value.response_status_code == 404
    assert caught.value.error is not None and caught.value.error.code == "Request_ResourceNotFound"
    assert sandbox.group_member_ids(group_id) == set()


async def test_add_member_by_ref_then_again_is_400(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    group_id = sandbox.seed_group("Sales")
    (user_id,) = seed_users(sandbox, 1)
    reference = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}")
    await sdk.groups.by_group_id(group_id).members.ref.post(reference)
    assert sandbox.group_member_ids(group_id) == {user_id}
    with pytest.raises(ODataError) as caught:
        await sdk.groups.by_group_id(group_id).members.ref.post(reference)
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and caught.value.error.message == ALREADY_EXISTS


async def test_remove_member_by_ref_then_again_is_404(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    group_id = sandbox.seed_group("Sales")
    (user_id,) = seed_users(sandbox, 1)
    sandbox.add_member_directly(group_id, user_id)
    await sdk.groups.by_group_id(group_id).members.by_directory_object_id(user_id).ref.delete()
    assert sandbox.group_member_ids(group_id) == set()
    with pytest.raises(ODataError) as caught:
        await sdk.groups.by_group_id(group_id).members.by_directory_object_id(user_id).ref.delete()
    assert caught.value.response_status_code == 404
    assert caught.value.error is not None and caught.value.error.code == "Request_ResourceNotFound"


async def test_dynamic_group_membership_edits_are_400(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    group_id = sandbox.seed_group("All Sales", dynamic=True)
    (user_id,) = seed_users(sandbox, 1)
    with pytest.raises(ODataError) as added:
        await sdk.groups.by_group_id(group_id).patch(bind(user_id))
    assert added.value.response_status_code == 400
    with pytest.raises(ODataError) as removed:
        await sdk.groups.by_group_id(group_id).members.by_directory_object_id(user_id).ref.delete()
    assert removed.value.response_status_code == 400
    assert sandbox.group_member_ids(group_id) == set()


async def test_members_list_pages_with_select(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    group_id = sandbox.seed_group("Big")
    users = seed_users(sandbox, 7)
    for user_id in users:
        sandbox.add_member_directly(group_id, user_id)
    config = RequestConfiguration(
        query_parameters=MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName"], top=3
        )
    )
    page = await sdk.groups.by_group_id(group_id).members.get(config)
    seen: list[str] = []
    while page is not None:
        seen.extend(member.id for member in page.value or [] if member.id)
        assert all(member.odata_type == "#microsoft.graph.user" for member in page.value or [])
        if not page.odata_next_link:
            break
        page = await sdk.groups.by_group_id(group_id).members.with_url(page.odata_next_link).get()
    assert seen == users  # stable order, no duplicates across pages


async def test_list_groups_filtered_by_display_name(sdk: GraphServiceClient, sandbox: GraphSandbox) -> None:
    wanted = sandbox.seed_group("Finance")
    sandbox.seed_group("Finance Leads")
    config = RequestConfiguration(
        query_parameters=GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter="displayName eq 'finance'", select=["id", "displayName"]
        )
    )
    page = await sdk.groups.get(config)
    assert page is not None and [group.id for group in page.value or []] == [wanted]


async def test_create_group_and_members_of_unknown_group(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    (user_id,) = seed_users(sandbox, 1)
    created = await raw_http.post(
        "/groups",
        json={
            "displayName": "Ops",
            "mailEnabled": False,
            "mailNickname": "ops",
            "securityEnabled": True,
            "members@odata.bind": [f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"],
        },
    )
    assert created.status_code == 201
    assert sandbox.group_member_ids(created.json()["id"]) == {user_id}

    missing = await raw_http.get("/groups/11111111-1111-1111-1111-111111111111/members")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
