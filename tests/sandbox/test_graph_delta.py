"""Delta queries for users and groups through the real msgraph-sdk."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.groups.delta.delta_request_builder import (
    DeltaRequestBuilder as GroupDeltaBuilder,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User
from msgraph.generated.users.delta.delta_request_builder import (
    DeltaRequestBuilder as UserDeltaBuilder,
)

from provisioner.clock import clock
from provisioner.sandbox.graph.app import GraphSandbox

SdkFactory = Callable[..., Awaitable[GraphServiceClient]]


async def drain_users(sdk: GraphServiceClient, first_url: str | None = None) -> tuple[list[Any], str, int]:
    """Follow nextLinks to the deltaLink; returns (entries, deltaLink, pages)."""
    page = await (sdk.users.delta.with_url(first_url) if first_url else sdk.users.delta).get()
    entries: list[Any] = []
    pages = 0
    while True:
        assert page is not None
        pages += 1
        entries.extend(page.value or [])
        if page.odata_delta_link:
            return entries, page.odata_delta_link, pages
        assert page.odata_next_link
        page = await sdk.users.delta.with_url(page.odata_next_link).get()


async def drain_groups(sdk: GraphServiceClient, url: str | None = None) -> tuple[list[Any], str]:
    if url is None:
        config = RequestConfiguration(
            query_parameters=GroupDeltaBuilder.DeltaRequestBuilderGetQueryParameters(
                select=["displayName", "members"]
            )
        )
        page = await sdk.groups.delta.get(config)
    else:
        page = await sdk.groups.delta.with_url(url).get()
    entries: list[Any] = []
    while True:
        assert page is not None
        entries.extend(page.value or [])
        if page.odata_delta_link:
            return entries, page.odata_delta_link
        assert page.odata_next_link
        page = await sdk.groups.delta.with_url(page.odata_next_link).get()


def members_delta(entries: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """members@delta per group id, merged across entries.

    The SDK leaves them as raw dicts in additional_data, and kiota's JSON parser turns every
    GUID-shaped string in there into a uuid.UUID: ids are normalised back to str here.
    """
    merged: dict[str, list[dict[str, Any]]] = {}
    for group in entries:
        for member in group.additional_data.get("members@delta", []):
            merged.setdefault(group.id, []).append({**member, "id": str(member["id"])})
        merged.setdefault(group.id, [])
    return merged


async def test_users_delta_pages_then_delta_link_returns_only_changes(sdk_for: SdkFactory) -> None:
    sandbox = GraphSandbox(page_size=2)
    sdk = await sdk_for(sandbox)
    kept, changed, deleted = (sandbox.seed_user(f"{n}@contoso.com") for n in ("kept", "changed", "deleted"))

    entries, delta_link, pages = await drain_users(sdk)
    assert pages == 2
    assert {user.id for user in entries} == {kept, changed, deleted}
    assert "$deltatoken=" in delta_link and delta_link.startswith("http://127.0.0.1/v1.0/users/delta?")

    await sdk.users.by_user_id(changed).patch(User(job_title="Lead"))
    await sdk.users.by_user_id(deleted).delete()
    added = sandbox.seed_user("added@contoso.com")

    changes, next_delta_link, _ = await drain_users(sdk, delta_link)
    by_id = {user.id: user for user in changes}
    assert set(by_id) == {changed, deleted, added}
    assert by_id[changed].job_title == "Lead"
    assert by_id[deleted].additional_data["@removed"] == {"reason": "changed"}

    quiet, _, _ = await drain_users(sdk, next_delta_link)
    assert quiet == []


async def test_users_delta_with_select_ignores_unselected_changes(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("a@contoso.com")
    config = RequestConfiguration(
        query_parameters=UserDeltaBuilder.DeltaRequestBuilderGetQueryParameters(select=["accountEnabled"])
    )
    first = await sdk.users.delta.get(config)
    assert first is not None and first.odata_delta_link
    assert [(u.id, u.account_enabled) for u in first.value or []] == [(user_id, True)]

    await sdk.users.by_user_id(user_id).patch(User(job_title="Unselected"))
    unchanged = await sdk.users.delta.with_url(first.odata_delta_link).get()
    assert unchanged is not None and unchanged.value == []
    assert unchanged.odata_delta_link

    await sdk.users.by_user_id(user_id).patch(User(account_enabled=False))
    disabled = await sdk.users.delta.with_url(unchanged.odata_delta_link).get()
    assert disabled is not None
    assert [(u.id, u.account_enabled) for u in disabled.value or []] == [(user_id, False)]


async def test_groups_delta_reports_members_and_their_removal(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    group_id = sandbox.seed_group("Engineering")
    empty_group = sandbox.seed_group("Empty")
    stays, goes, joins = (sandbox.seed_user(f"{n}@contoso.com") for n in ("stays", "goes", "joins"))
    sandbox.add_member_directly(group_id, stays)
    sandbox.add_member_directly(group_id, goes)

    entries, delta_link = await drain_groups(sdk)
    assert {group.id for group in entries} == {group_id, empty_group}
    initial = members_delta(entries)
    assert {m["id"] for m in initial[group_id]} == {stays, goes}
    assert all(m["@odata.type"] == "#microsoft.graph.user" and "@removed" not in m for m in initial[group_id])
    assert initial[empty_group] == []  # no members: no members@delta at all

    sandbox.remove_member_directly(group_id, goes)
    sandbox.add_member_directly(group_id, joins)
    changes, _ = await drain_groups(sdk, delta_link)
    assert [group.id for group in changes] == [group_id]
    assert changes[0].display_name == "Engineering"
    assert members_delta(changes)[group_id] == [
        {"@odata.type": "#microsoft.graph.user", "id": goes, "@removed": {"reason": "deleted"}},
        {"@odata.type": "#microsoft.graph.user", "id": joins},
    ]


async def test_groups_delta_spreads_a_large_group_over_entries(sdk_for: SdkFactory) -> None:
    sandbox = GraphSandbox(page_size=3)
    sdk = await sdk_for(sandbox)
    group_id = sandbox.seed_group("Large")
    users = [sandbox.seed_user(f"u{i}@contoso.com") for i in range(8)]
    for user_id in users:
        sandbox.add_member_directly(group_id, user_id)
    entries, _ = await drain_groups(sdk)
    assert len(entries) == 3 and all(entry.id == group_id for entry in entries)
    assert [m["id"] for m in members_delta(entries)[group_id]] == users


async def test_deleted_user_leaves_groups_in_groups_delta(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    group_id = sandbox.seed_group("Engineering")
    user_id = sandbox.seed_user("gone@contoso.com")
    sandbox.add_member_directly(group_id, user_id)
    _, delta_link = await drain_groups(sdk)
    await sdk.users.by_user_id(user_id).delete()
    changes, _ = await drain_groups(sdk, delta_link)
    assert members_delta(changes)[group_id] == [
        {"@odata.type": "#microsoft.graph.user", "id": user_id, "@removed": {"reason": "deleted"}}
    ]


async def test_unknown_delta_token_is_410_via_sdk(sdk: GraphServiceClient) -> None:
    with pytest.raises(ODataError) as caught:
        await sdk.users.delta.with_url("http://127.0.0.1/v1.0/users/delta?$deltatoken=bm90LWEtdG9rZW4").get()
    assert caught.value.response_status_code == 410
    assert caught.value.error is not None and caught.value.error.code == "syncStateNotFound"


async def test_delta_token_from_another_sandbox_is_410_with_location(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    other = GraphSandbox()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other.app), headers={"Authorization": "Bearer x"}
    ) as other_http:
        first = await other_http.get("http://127.0.0.1/v1.0/users/delta")
    foreign_link = first.json()["@odata.deltaLink"]
    response = await raw_http.get(foreign_link)
    assert response.status_code == 410
    assert response.headers["location"] == "http://127.0.0.1/v1.0/users/delta"


async def test_delta_token_expires_after_seven_days(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox, moved_clock: None
) -> None:
    first = await raw_http.get("/users/delta")
    delta_link = first.json()["@odata.deltaLink"]
    clock.advance(timedelta(days=6))
    assert (await raw_http.get(delta_link)).status_code == 200
    clock.advance(timedelta(days=2))
    assert (await raw_http.get(delta_link)).status_code == 410


async def test_delta_token_latest_starts_from_now(raw_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    sandbox.seed_user("old@contoso.com")
    latest = await raw_http.get("/groups/delta()", params={"$deltatoken": "latest"})
    assert latest.status_code == 200 and latest.json()["value"] == []
    group_id = sandbox.seed_group("New")
    changes = await raw_http.get(latest.json()["@odata.deltaLink"])
    assert [entry["id"] for entry in changes.json()["value"]] == [group_id]
