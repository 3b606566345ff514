"""/Bulk (RFC 7644 §3.7): bulkId references, failOnErrors, limits, per-operation outcomes."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from provisioner.scim.config import BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD_SIZE
from tests.scim_endpoint.helpers import (
    BASE,
    BULK_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    Scim,
    assert_error,
    create_user,
    patch_body,
)


def bulk(*operations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schemas": [BULK_SCHEMA], "Operations": list(operations), **extra}


def post_user(bulk_id: str, user_name: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id,
        "data": {"schemas": [USER_SCHEMA], "userName": user_name},
    }


def test_bulk_id_references_are_resolved_in_dependency_order(scim: Scim) -> None:
    client = scim.client
    body = bulk(
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "team",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "Bulk Team",
                "members": [{"value": "bulkId:alice"}, {"value": "bulkId:bob"}],
            },
        },
        post_user("alice", "alice@example.com"),
        post_user("bob", "bob@example.com"),
        {
            "method": "PATCH",
            "path": "/Users/bulkId:alice",
            "data": patch_body({"op": "replace", "path": "title", "value": "Lead"}),
        },
    )
    response = client.post(f"{BASE}/Bulk", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/scim+json"
    ops = response.json()["Operations"]
    assert [(o["method"], o.get("bulkId"), o["status"]) for o in ops] == [
        ("POST", "team", "201"),
        ("POST", "alice", "201"),
        ("POST", "bob", "201"),
        ("PATCH", None, "200"),
    ]
    alice_id = ops[1]["location"].rsplit("/", 1)[1]
    assert ops[3]["location"].endswith(f"/Users/{alice_id}") and ops[3]["version"] == 'W/"2"'
    group = client.get(ops[0]["location"].replace("http://testserver", "")).json()
    assert {m["value"] for m in group["members"]} == {
        alice_id,
        ops[2]["location"].rsplit("/", 1)[1],
    }
    assert client.get(f"{BASE}/Users/{alice_id}").json()["title"] == "Lead"


def test_failed_operations_do_not_undo_the_others(client: TestClient) -> None:
    create_user(client, "taken@example.com")
    body = bulk(
        post_user("a", "taken@example.com"),
        post_user("b", "fresh@example.com"),
        {"method": "DELETE", "path": "/Users/missing"},
        {
            "method": "PATCH",
            "path": "/Users/bulkId:a",
            "data": patch_body({"op": "replace", "path": "title", "value": "x"}),
        },
        {"method": "GET", "path": "/Users"},
    )
    ops = client.post(f"{BASE}/Bulk", json=body).json()["Operations"]
    statuses = [o["status"] for o in ops]
    assert statuses == ["409", "201", "404", "409", "400"]
    assert ops[0]["response"]["scimType"] == "uniqueness"
    assert ops[0]["response"]["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert ops[2]["location"].endswith("/Users/missing")
    found = client.get(f"{BASE}/Users", params={"filter": 'userName eq "fresh@example.com"'})
    assert found.json()["totalResults"] == 1


def test_fail_on_errors_stops_the_request(client: TestClient) -> None:
    body = bulk(
        {"method": "DELETE", "path": "/Users/nope1"},
        {"method": "DELETE", "path": "/Users/nope2"},
        post_user("c", "never@example.com"),
        failOnErrors=2,
    )
    ops = client.post(f"{BASE}/Bulk", json=body).json()["Operations"]
    assert [o["status"] for o in ops] == ["404", "404"]
    found = client.get(f"{BASE}/Users", params={"filter": 'userName eq "never@example.com"'})
    assert found.json()["totalResults"] == 0


def test_circular_references_are_409(client: TestClient) -> None:
    body = bulk(
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g1",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "G1",
                "members": [{"value": "bulkId:g2"}],
            },
        },
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g2",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "G2",
                "members": [{"value": "bulkId:g1"}],
            },
        },
        {
            "method": "PATCH",
            "path": "/Users/bulkId:unknown",
            "data": patch_body({"op": "replace", "path": "title", "value": "x"}),
        },
    )
    ops = client.post(f"{BASE}/Bulk", json=body).json()["Operations"]
    assert ops[0]["status"] == "409" or ops[1]["status"] == "409"
    assert ops[2]["status"] == "409"


def test_version_is_if_match(client: TestClient) -> None:
    user = create_user(client, "v@example.com")
    op = {
        "method": "PATCH",
        "path": f"/Users/{user['id']}",
        "version": 'W/"5"',
        "data": patch_body({"op": "replace", "path": "title", "value": "x"}),
    }
    ops = client.post(f"{BASE}/Bulk", json=bulk(op)).json()["Operations"]
    assert ops[0]["status"] == "412"
    op["version"] = 'W/"1"'
    ops = client.post(f"{BASE}/Bulk", json=bulk(op)).json()["Operations"]
    assert ops[0]["status"] == "200" and ops[0]["version"] == 'W/"2"'
    delete = {"method": "DELETE", "path": f"/Users/{user['id']}"}
    assert client.post(f"{BASE}/Bulk", json=bulk(delete)).json()["Operations"][0]["status"] == "204"


def test_limits_announced_are_enforced(client: TestClient) -> None:
    too_many = bulk(
        *[post_user(f"u{i}", f"u{i}@example.com") for i in range(BULK_MAX_OPERATIONS + 1)]
    )
    assert_error(client.post(f"{BASE}/Bulk", json=too_many), 413)
    filler = "x" * (BULK_MAX_PAYLOAD_SIZE + 1)
    too_big = bulk(post_user("a", "a@example.com"), padding=filler)
    assert_error(
        client.post(
            f"{BASE}/Bulk",
            content=json.dumps(too_big).encode(),
            headers={"content-type": "application/scim+json"},
        ),
        413,
    )

    def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        yield b'{"schemas": ["' + BULK_SCHEMA.encode() + b'"], "pad": "'
        for _ in range(BULK_MAX_PAYLOAD_SIZE // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    assert_error(
        client.post(
            f"{BASE}/Bulk", content=chunks(), headers={"content-type": "application/scim+json"}
        ),
        413,
    )
    assert_error(client.post(f"{BASE}/Bulk", json={"Operations": []}), 400)
    assert_error(client.post(f"{BASE}/Bulk", json=bulk(failOnErrors=0)), 400)
