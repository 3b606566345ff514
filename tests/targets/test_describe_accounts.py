"""``describe_accounts``: who accounts are (login, display name, employee id, enabled), read in
few calls: Entra ID through the real msgraph-sdk against the Graph sandbox, a SCIM app against
scim2-server."""

from __future__ import annotations

import httpx

from provisioner.sandbox.scim.app import ScimSandbox
from provisioner.targets.contract import AccountInfo
from provisioner.targets.scim.config import ScimTarget
from provisioner.targets.scim.connector import ScimConnector
from tests.targets.scim_helpers import RequestLog

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


async def test_graph_refuses_more_than_15_values_in_one_filter(graph_sandbox):
    ids = [graph_sandbox.seed_user(f"u{i}@example.test") for i in range(16)]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=graph_sandbox.app),
                                 base_url="http://127.0.0.1/v1.0", headers={"Authorization": "Bearer t"}) as graph:
        listed = ",".join(f"'{i}'" for i in ids)
        refused = await graph.get("/users", params={"$filter": f"id in ({listed})"})
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
        ored = " or ".join(f"id eq '{i}'" for i in ids)
        assert (await graph.get("/users", params={"$filter": ored})).status_code == 400
        fifteen = ",".join(f"'{i}'" for i in ids[:15])
        answer = await graph.get("/users", params={"$filter": f"id in ({fifteen})", "$select": "id"})
        assert answer.status_code == 200 and len(answer.json()["value"]) == 15


async def test_entra_describes_40_accounts_in_one_call(graph_sandbox, entra_over_sandbox):
    ids = [graph_sandbox.seed_user(f"user{i:02d}@example.test", display_name=f"User {i}", employee_id=f"E{i:03d}",
                                   account_enabled=i % 2 == 0) for i in range(40)]
    group = graph_sandbox.seed_group("Not A User")
    graph_sandbox.reset_stats()
    found = await entra_over_sandbox.describe_accounts([*ids, group, "00000000-0000-0000-0000-00000000dead"])
    assert set(found) == set(ids)  # a group among a group's members, a deleted id: left out
    assert found[ids[3]] == AccountInfo(ids[3], "user03@example.test", "User 3", "E003", False)
    assert found[ids[4]].enabled is True
    assert (graph_sandbox.stats.http_calls, graph_sandbox.stats.batch_calls) == (1, 1)  # 3 filters of <= 15 ids


async def test_scim_describes_accounts_with_or_ed_filters(tmp_path):
    server = ScimSandbox()
    made = [await server.add("Users", {"schemas": [USER], "userName": f"p{i}@example.com", "externalId": f"E{i}",
                                       "name": {"givenName": "Person", "familyName": str(i)},
                                       **({"displayName": f"Person {i}"} if i else {}),
                                       "active": i != 2}) for i in range(5)]
    log = RequestLog(server.transport())
    cfg = ScimTarget.model_validate({"kind": "scim", "name": "app", "base_url": "http://app.test/v2",
                                     "auth": {"method": "none"}, "compatibility": {"lookups_per_request": 3}})
    connector = ScimConnector.create(cfg, transport=log)
    try:
        ids = [m["id"] for m in made]
        found = await connector.describe_accounts([*ids, "absent"])
        assert set(found) == set(ids)
        assert found[ids[1]] == AccountInfo(ids[1], "p1@example.com", "Person 1", "E1", True)
        assert found[ids[0]].display_name == "Person 0"  # from name when displayName is absent
        assert found[ids[2]].enabled is False
        assert log.counts()[("GET", "Users")] == 2  # 6 ids, 3 OR-ed to a filter
    finally:
        await connector.aclose()
