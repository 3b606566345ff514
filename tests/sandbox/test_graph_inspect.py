"""The sandbox's inspection routes (/_sandbox/...), which benchmarks read a sandbox process with:
exact counters of the Graph calls made through the SDK, the tenant in one request, drift behind
the service's back; outside Graph's counters and quota, and behind the sandbox's token."""

from __future__ import annotations

import httpx
from msgraph import GraphServiceClient
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.user import User

from provisioner.sandbox.graph.app import GraphSandbox
from tests.sandbox.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_counters_tenant_and_drift_read_through_the_inspection_routes(
        sandbox: GraphSandbox, sdk: GraphServiceClient) -> None:
    group_id = sandbox.seed_group("Readers")
    created = await sdk.users.post(User(display_name="Ada", user_principal_name="ada@example.com",
                                        mail_nickname="ada", account_enabled=True, employee_id="E1",
                                        password_profile=PasswordProfile(password="Pa55-word!")))
    assert created is not None and created.id
    await sdk.groups.by_group_id(group_id).get()
    sandbox.add_member_directly(group_id, created.id)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://sb") as client:
        stats = (await client.get("/_sandbox/stats", headers=AUTH)).json()
        assert (stats["writes"], stats["reads"], stats["http_calls"]) == (1, 1, 2)
        assert stats["by_method"] == {"POST": 1, "GET": 1}
        assert (stats["users"], stats["memberships"]) == (1, 1)

        tenant = (await client.get("/_sandbox/tenant", headers=AUTH)).json()
        assert tenant["users"] == [[created.id, "E1", "ada@example.com", True]]
        assert tenant["groups"] == {"Readers": [created.id]} and tenant["group_ids"] == {"Readers": group_id}

        answer = await client.post("/_sandbox/drift", headers=AUTH, json={"remove": [[group_id, created.id]]})
        assert answer.json() == {"removed": 1, "added": 0}
        assert sandbox.group_member_ids(group_id) == set()
        # none of this was a Graph call: the counters are as before
        after = (await client.get("/_sandbox/stats", headers=AUTH)).json()
        assert (after["http_calls"], after["writes"], after["memberships"]) == (2, 1, 0)

        refused = await client.get("/_sandbox/stats", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "InvalidAuthenticationToken"
