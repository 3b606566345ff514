"""JSON $batch: raw HTTP and through msgraph-core's batch request content."""

from __future__ import annotations

import json
from typing import Any

import httpx
from msgraph import GraphServiceClient
from msgraph.generated.models.user import User
from msgraph_core.requests.batch_request_builder import BatchRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from provisioner.sandbox.graph.app import GraphSandbox

JSON = {"Content-Type": "application/json"}


def ref_bind(group_id: str, user_id: str, item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/groups/{group_id}/members/$ref",
        "headers": JSON,
        "body": {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"},
    }


async def test_batch_runs_each_item_through_its_handler(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    group_id = sandbox.seed_group("Engineering")
    leaver = sandbox.seed_user("leaver@contoso.com")
    joiner = sandbox.seed_user("joiner@contoso.com")
    sandbox.add_member_directly(group_id, leaver)
    sandbox.reset_stats()

    response = await raw_http.post(
        "/$batch",
        json={
            "requests": [
                {
                    "id": "1",
                    "method": "PATCH",
                    "url": f"/users/{leaver}",
                    "headers": JSON,
                    "body": {"accountEnabled": False},
                },
                {"id": "2", "method": "POST", "url": f"users/{leaver}/revokeSignInSessions"},
                {"id": "3", "method": "DELETE", "url": f"/groups/{group_id}/members/{leaver}/$ref"},
                ref_bind(group_id, joiner, "4"),
                ref_bind(group_id, joiner, "5"),  # already a member by now
                {
                    "id": "6",
                    "method": "GET",
                    "url": "/users?$filter=userPrincipalName eq 'joiner@contoso.com'&$select=id",
                },
            ]
        },
    )
    assert response.status_code == 200
    by_id = {item["id"]: item for item in response.json()["responses"]}
    assert {key: item["status"] for key, item in by_id.items()} == {
        "1": 204,
        "2": 200,
        "3": 204,
        "4": 204,
        "5": 400,
        "6": 200,
    }
    assert by_id["2"]["body"]["value"] is True
    assert by_id["5"]["body"]["error"]["code"] == "Request_BadRequest"
    assert by_id["6"]["body"]["value"] == [{"id": joiner}]

    stored = sandbox.user(leaver)
    assert stored is not None and stored["accountEnabled"] is False
    assert sandbox.sessions_revoked_at(leaver) is not None
    assert sandbox.group_member_ids(group_id) == {joiner}

    stats = sandbox.stats
    assert (stats.http_calls, stats.batch_calls, stats.sub_requests) == (1, 1, 6)
    assert (stats.writes, stats.reads, stats.throttled) == (5, 1, 0)
    assert len(stats.write_times) == 5
    assert stats.calls_by_route["POST /groups/{group_id}/members/$ref"] == 2


async def test_batch_of_twenty_one_is_400(raw_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    user_id = sandbox.seed_user("a@contoso.com")
    requests = [{"id": str(i), "method": "GET", "url": f"/users/{user_id}"} for i in range(21)]
    response = await raw_http.post("/$batch", json={"requests": requests})
    assert response.status_code == 400
    assert sandbox.stats.sub_requests == 0


async def test_batch_item_with_body_needs_content_type(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    user_id = sandbox.seed_user("a@contoso.com")
    item = {"id": "1", "method": "PATCH", "url": f"/users/{user_id}", "body": {"jobTitle": "x"}}
    response = await raw_http.post("/$batch", json={"requests": [item]})
    assert response.status_code == 400


async def test_throttle_storm_gives_429_items_inside_a_200_batch(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    group_id = sandbox.seed_group("Engineering")
    users = [sandbox.seed_user(f"u{i}@contoso.com") for i in range(4)]
    sandbox.throttle_storm(2, retry_after=7)
    response = await raw_http.post(
        "/$batch", json={"requests": [ref_bind(group_id, uid, str(i)) for i, uid in enumerate(users)]}
    )
    assert response.status_code == 200
    items = response.json()["responses"]
    assert [item["status"] for item in items] == [429, 429, 204, 204]
    assert items[0]["headers"]["Retry-After"] == "7"
    assert items[0]["body"]["error"]["code"] == "TooManyRequests"
    assert sandbox.group_member_ids(group_id) == set(users[2:])
    assert (sandbox.stats.throttled, sandbox.stats.writes) == (2, 2)


async def test_fail_next_applies_to_batch_items(raw_http: httpx.AsyncClient, sandbox: GraphSandbox) -> None:
    user_id = sandbox.seed_user("a@contoso.com")
    sandbox.fail_next(
        "POST", r"/revokeSignInSessions$", status=503, code="serviceUnavailable", message="down"
    )
    revoke = {"id": "r", "method": "POST", "url": f"/users/{user_id}/revokeSignInSessions"}
    first = await raw_http.post("/$batch", json={"requests": [revoke]})
    second = await raw_http.post("/$batch", json={"requests": [revoke]})
    assert first.json()["responses"][0]["status"] == 503
    assert first.json()["responses"][0]["body"]["error"]["code"] == "serviceUnavailable"
    assert second.json()["responses"][0]["status"] == 200


async def test_depends_on_a_failed_item_answers_424(
    raw_http: httpx.AsyncClient, sandbox: GraphSandbox
) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    response = await raw_http.post(
        "/$batch",
        json={
            "requests": [
                {
                    "id": "1",
                    "method": "PATCH",
                    "url": f"/users/{missing}",
                    "headers": JSON,
                    "body": {"jobTitle": "x"},
                },
                {
                    "id": "2",
                    "method": "POST",
                    "url": f"/users/{missing}/revokeSignInSessions",
                    "dependsOn": ["1"],
                },
            ]
        },
    )
    assert [item["status"] for item in response.json()["responses"]] == [404, 424]
    assert sandbox.stats.sub_requests == 1


async def test_batch_sent_through_msgraph_core_content(
    sdk: GraphServiceClient, sandbox: GraphSandbox
) -> None:
    """The SDK drops sub-response bodies (kiota-python#737), so the service posts the batch's
    request information and reads the bytes itself; the sandbox must accept what msgraph-core
    serialises (lower-case headers, ``depends_on``, URLs stripped of /v1.0).
    """
    user_id = sandbox.seed_user("a@contoso.com")
    group_id = sandbox.seed_group("Engineering")
    users = sdk.users.by_user_id(user_id)
    content = BatchRequestContent({})
    content.add_request(
        "1", BatchRequestItem(users.to_patch_request_information(User(account_enabled=False)), id="1")
    )
    content.add_request(
        "2", BatchRequestItem(users.revoke_sign_in_sessions.to_post_request_information(), id="2")
    )
    content.add_request(
        "3",
        BatchRequestItem(
            sdk.groups.by_group_id(group_id)
            .members.by_directory_object_id(user_id)
            .ref.to_delete_request_information(),
            id="3",
        ),
    )
    adapter = sdk.request_adapter
    info = await BatchRequestBuilder(adapter).to_post_request_information(content)
    raw = await adapter.send_primitive_async(info, "bytes", {})  # type: ignore[func-returns-value]  # kiota annotates None
    assert raw is not None
    statuses = {item["id"]: item["status"] for item in json.loads(raw)["responses"]}
    assert statuses == {"1": 204, "2": 200, "3": 404}
    stored = sandbox.user(user_id)
    assert stored is not None and stored["accountEnabled"] is False
