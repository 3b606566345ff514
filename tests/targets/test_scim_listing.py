"""Finding users and groups in apps whose filters cannot be trusted (provisioner/targets/scim/
listing.py): scim2-server in-process announcing no filtering or with filters that find nothing
on some attributes, and the django-scim2 app as a real process (its shipped filter settings find
no group by displayName and announce filter.supported false)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from provisioner.sandbox.scim.app import ScimSandbox
from provisioner.targets.contract import AccountSpec
from provisioner.targets.scim.config import ScimTarget
from provisioner.targets.scim.connector import ScimConnector
from provisioner.targets.scim.memberships import GROUPS_LISTED
from tests.servers import django_server
from tests.servers.launch import RunningServer

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class Requests(httpx.AsyncBaseTransport):
    """Records each request's method, resource and filter (if any)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str, str | None]] = []

    def filtered(self, resource: str) -> list[str]:
        return [f for m, r, f in self.seen if m == "GET" and r == resource and f]

    def listed(self, resource: str) -> int:
        return sum(1 for m, r, f in self.seen if m == "GET" and r == resource and f is None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resource = request.url.path.rstrip("/").rsplit("/v2/", 1)[-1]
        self.seen.append((request.method, resource, request.url.params.get("filter")))
        return await self.inner.handle_async_request(request)


def config(base_url: str = "http://app.test/v2", **extra) -> ScimTarget:
    return ScimTarget.model_validate({
        "kind": "scim", "name": "app", "base_url": base_url, "auth": {"method": "none"},
        "managed_groups": [{"name": "App Users"}, {"name": "App Admins"}], "create_missing_groups": True,
        **extra})


def spec(n: int) -> AccountSpec:
    return AccountSpec(employee_id=f"E{n}", login=f"person{n}@example.com", mail_nickname=f"person{n}",
                       display_name=f"Person {n}", given_name="Person", family_name=str(n),
                       email=f"person{n}@example.com")


def user_body(n: int) -> dict:
    return {"schemas": [USER], "userName": f"person{n}@example.com", "externalId": f"E{n}"}


@pytest.fixture
async def over() -> AsyncIterator:
    """``over(server)``: a connector on an in-process scim2-server, with its request log."""
    opened: list[ScimConnector] = []

    def make(server: ScimSandbox) -> tuple[ScimConnector, Requests]:
        log = Requests(server.transport())
        connector = ScimConnector.create(config(), transport=log)
        opened.append(connector)
        return connector, log

    yield make
    for connector in opened:
        await connector.aclose()


async def test_without_filtering_users_and_groups_are_listed_page_by_page_and_matched(over):
    server = ScimSandbox(filter=False, max_results=3)
    for n in range(0, 10):
        await server.add("Users", user_body(n))
    group = await server.add("Groups", {"schemas": [GROUP], "displayName": "App Users"})
    connector, log = over(server)
    found = await connector.find_accounts([spec(n) for n in (2, 9, 42)])
    assert set(found) == {"E2", "E9"}  # E42 has no account
    assert found["E9"][1] == "person9@example.com"
    assert await connector.groups_by_name(["App Users", "App Admins"]) == {"App Users": group["id"]}
    assert log.filtered("Users") == [] and log.filtered("Groups") == []  # never asked to filter
    assert log.listed("Users") == 4  # 10 users, 3 to a page (the server's maxResults)
    health = await connector.check()
    assert health.capabilities["filter"] is False
    assert health.capabilities["managed_groups_found"] == 1
    assert health.capabilities["managed_groups_missing"] == ["App Admins"]


async def test_listing_is_cached_and_dropped_when_the_connector_creates(over):
    server = ScimSandbox(filter=False)
    await server.add("Users", user_body(1))
    connector, log = over(server)
    assert set(await connector.find_accounts([spec(1), spec(2)])) == {"E1"}
    assert set(await connector.find_accounts([spec(1), spec(2)])) == {"E1"}
    assert log.listed("Users") == 1  # the second lookup answered from the cache
    created = await connector.send("POST", "Users", writes_=1, json=user_body(2))
    assert created.status == 201
    assert set(await connector.find_accounts([spec(1), spec(2)])) == {"E1", "E2"}
    assert log.listed("Users") == 2


async def test_a_filter_that_finds_no_group_is_confirmed_by_a_listing_and_not_asked_again(over):
    server = ScimSandbox(blind_filters=("displayName",))
    users = await server.add("Groups", {"schemas": [GROUP], "displayName": "App Users"})
    connector, log = over(server)
    assert await connector.groups_by_name(["App Users", "App Admins"]) == {"App Users": users["id"]}
    assert len(log.filtered("Groups")) == 1 and log.listed("Groups") == 1
    assert connector.listings.describe() == ["Groups.displayName"]  # learned: the filter is blind
    log.seen.clear()
    health = await connector.check()
    assert health.capabilities["managed_groups_found"] == 1
    assert log.filtered("Groups") == []  # no longer asked
    # A managed group that is missing is created once, and found afterwards.
    resolved = await connector.resolve_groups(["App Users", "App Admins"])
    assert set(resolved) == {"App Users", "App Admins"}
    assert (await server.group("App Admins"))["id"] == resolved["App Admins"]
    assert await connector.groups_by_name(["App Admins"]) == {"App Admins": resolved["App Admins"]}


async def test_a_filter_that_works_is_trusted_after_one_confirmation(over):
    server = ScimSandbox()
    connector, log = over(server)
    assert await connector.groups_by_name(["App Users"]) == {}
    assert log.listed("Groups") == 1  # the empty answer confirmed once
    assert await connector.groups_by_name(["App Admins"]) == {}
    assert log.listed("Groups") == 1 and len(log.filtered("Groups")) == 2
    assert connector.listings.describe() == []


async def test_users_a_filter_misses_are_found_by_listing_and_the_attribute_remembered(over):
    server = ScimSandbox(blind_filters=("externalId", "userName"))
    for n in range(3):
        await server.add("Users", user_body(n))
    connector, log = over(server)
    found = await connector.find_accounts([spec(0), spec(1), spec(7)])
    assert set(found) == {"E0", "E1"}
    assert connector.listings.describe() == ["Users.externalId", "Users.userName"]
    log.seen.clear()
    assert set(await connector.find_accounts([spec(2)])) == {"E2"}
    assert log.filtered("Users") == []


async def test_leaver_groups_are_read_by_listing_when_the_server_cannot_filter(over):
    server = ScimSandbox(filter=False)
    user = await server.add("Users", user_body(1))
    other = await server.add("Users", user_body(2))
    group = await server.add("Groups", {"schemas": [GROUP], "displayName": "Side Project",
                                        "members": [{"value": user["id"]}, {"value": other["id"]}]})
    await server.add("Groups", {"schemas": [GROUP], "displayName": "Elsewhere", "members": [{"value": other["id"]}]})
    connector, _ = over(server)
    state = (await connector.read_accounts([user["id"]], [], all_groups=True))[user["id"]]
    assert state.groups_source == GROUPS_LISTED
    assert state.all_groups == {group["id"]: "Side Project"}


# ---- against the django-scim2 app (a real process) ------------------------------------------


@pytest.fixture(scope="module")
def django_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = django_server.start(tmp_path_factory.mktemp("django-scim2"))
    try:
        yield server
    finally:
        server.stop()


async def test_django_scim2_groups_and_users_are_found_without_its_filters(django_app, tmp_path):
    token = tmp_path / "token"
    token.write_text(django_app.token)
    cfg = config(django_app.base_url, auth={"method": "bearer", "token": {"file": str(token)}},
                 managed_groups=[{"name": "Django Users"}, {"name": "Django Admins"}])
    with django_app.client() as client:
        group = client.post("/Groups", json={"schemas": [GROUP], "displayName": "Django Users"}).json()
        assert client.get("/Groups", params={"filter": 'displayName eq "Django Users"'}).json()["totalResults"] == 0
        user = client.post("/Users", json={**user_body(501), "name": {"givenName": "P", "familyName": "501"},
                                           "emails": [{"value": "person501@example.com", "primary": True}]}).json()
    connector = ScimConnector.create(cfg)
    try:
        health = await connector.check()
        assert health.capabilities["filter"] is False  # as its ServiceProviderConfig says
        assert health.capabilities["managed_groups_found"] == 1
        assert health.capabilities["managed_groups_missing"] == ["Django Admins"]
        assert await connector.find_accounts([spec(501), spec(502)]) == {
            "E501": (str(user["id"]), "person501@example.com")}
        # Creating a group that exists: django-scim2 answers 409 (a unique name), and it is found.
        assert await connector._create_group("Django Users") == str(group["id"])
        created = await connector.resolve_groups(["Django Admins"])
        with django_app.client() as client:
            names = {g["displayName"]: str(g["id"]) for g in client.get("/Groups").json()["Resources"]}
        assert names == {"Django Users": str(group["id"]), "Django Admins": created["Django Admins"]}
    finally:
        await connector.aclose()
