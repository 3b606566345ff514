"""The whole lifecycle into scimmy (Node.js: scimmy + scimmy-routers on express), run as a real
process on loopback and configured as its documentation says, with the wiki target file's default
settings: joiners (attributes, groups), a mover, a name change, a leaver in each deprovision mode
and a rehire, each read back from the app over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provisioner.clock import clock, utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.evidence import service as evidence
from provisioner.identities import repository as identities
from provisioner.queue.models import Operation
from tests.servers import scimmy_server
from tests.servers.launch import RunningServer
from tests.support import event, hire
from tests.targets.scim_helpers import FAST

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WIKI_GROUPS = ("Wiki Readers", "Wiki Editors")


@pytest.fixture
def scimmy(tmp_path: Path) -> RunningServer:
    server = scimmy_server.start(tmp_path / "scimmy")
    try:
        yield server
    finally:
        server.stop()


class ScimmyView:
    """What scimmy holds, read through its own SCIM API over HTTP."""

    def __init__(self, server: RunningServer, svc: SandboxedService) -> None:
        self.server = server
        self.svc = svc

    def remote_id(self, employee_id: str) -> str | None:
        with self.svc.db.transaction() as session:
            person = identities.by_employee_id(session, employee_id)
            account = identities.account(session, person.id, "wiki") if person else None
            return account.remote_id if account else None

    def _list(self, resource: str, **params: str) -> list[dict[str, Any]]:
        with self.server.client() as client:
            resp = client.get(f"/{resource}", params={"count": "200", **params})
        assert resp.status_code == 200, resp.text
        return resp.json()["Resources"]

    def accounts(self, employee_id: str) -> list[dict[str, Any]]:
        return self._list("Users", filter=f'externalId eq "{employee_id}"')

    def user(self, employee_id: str) -> dict[str, Any] | None:
        found = self.accounts(employee_id)
        assert len(found) <= 1, f"{len(found)} accounts hold externalId {employee_id}"
        return found[0] if found else None

    def user_by_id(self, user_id: str) -> dict[str, Any] | None:
        with self.server.client() as client:
            resp = client.get(f"/Users/{user_id}")
        return resp.json() if resp.status_code == 200 else None

    def group(self, name: str) -> dict[str, Any]:
        [found] = self._list("Groups", filter=f'displayName eq "{name}"')
        return found

    def member_ids(self, name: str) -> list[str]:
        """The group's member ids as the app stores them (a duplicate shows twice)."""
        return [m["value"] for m in self.group(name).get("members", [])]

    def groups_of(self, user_id: str) -> set[str]:
        return {g["displayName"] for g in self._list("Groups")
                if any(m["value"] == user_id for m in g.get("members", []))}

    def groups(self, employee_id: str) -> set[str]:
        user = self.user(employee_id)
        return set() if user is None else self.groups_of(user["id"])


def scimmy_service(tmp_path: Path, database_url: str, server: RunningServer,
                   **options: Any) -> SandboxedService:
    return SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                            settings={**FAST, **options.pop("settings", {})},
                            scim_servers={"wiki": (server.base_url, server.token)}, **options)


@pytest.fixture
async def wiki(database_url: str, tmp_path: Path, scimmy: RunningServer) -> AsyncIterator[ScimmyView]:
    """The service with the wiki target (default settings) pointed at scimmy."""
    svc = scimmy_service(tmp_path, database_url, scimmy)
    try:
        yield ScimmyView(scimmy, svc)
    finally:
        await svc.close()


def ops(svc: SandboxedService, kind: str | None = None) -> list[Operation]:
    with svc.db.transaction() as session:
        query = select(Operation).where(Operation.target == "wiki")
        if kind is not None:
            query = query.where(Operation.kind == kind)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def revocation(svc: SandboxedService) -> dict[str, Any]:
    with svc.db.transaction() as session:
        [record] = evidence.revocations(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    return {s["target"]: s for s in record["systems"]}["wiki"]


async def test_joiners_get_accounts_with_attributes_and_groups(wiki: ScimmyView):
    svc = wiki.svc
    await svc.send(hire("m0", "M0", "Mary", "Boss", "Engineering", cost_center="CC-7"))
    await svc.drain()
    await svc.send(hire("j1", "J1", "Ada", "Lovelace", "Engineering", cost_center="CC-7",
                        title="Engineer", manager_employee_id="M0"))
    await svc.send(hire("j2", "J2", "Sven", "Sales", "Sales"))
    await svc.drain()
    ada = wiki.user("J1")
    assert ada is not None and ada["id"] == wiki.remote_id("J1")
    assert ada["userName"] == "ada.lovelace@example.com" and ada["active"] is True
    assert ada["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert ada["title"] == "Engineer"
    assert ada["emails"] == [{"value": "ada.lovelace@example.com", "type": "work", "primary": True}]
    ext = ada[ENTERPRISE]
    assert ext["employeeNumber"] == "J1" and ext["department"] == "Engineering" and ext["costCenter"] == "CC-7"
    assert ext["manager"]["value"] == wiki.remote_id("M0")
    assert wiki.groups("J1") == {"Wiki Readers", "Wiki Editors"}
    assert wiki.groups("J2") == {"Wiki Readers"}
    for name in WIKI_GROUPS:  # each member stored once
        members = wiki.member_ids(name)
        assert len(members) == len(set(members)), f"{name}: {members}"
    assert not [o for o in ops(svc) if o.status != "succeeded"]


async def test_mover_swaps_groups_and_updates_attributes(wiki: ScimmyView):
    svc = wiki.svc
    await svc.send(hire("v1", "V1", "Max", "Mover", "Engineering"))
    await svc.drain()
    rid = wiki.remote_id("V1")
    assert wiki.groups("V1") == {"Wiki Readers", "Wiki Editors"}
    await svc.send(event("v2", "update", "V1", department="Sales", title="Account Executive"))
    await svc.drain()
    user = wiki.user("V1")
    assert user["id"] == rid
    assert user[ENTERPRISE]["department"] == "Sales" and user["title"] == "Account Executive"
    assert wiki.groups("V1") == {"Wiki Readers"}
    assert rid not in wiki.member_ids("Wiki Editors")


async def test_name_change_reaches_the_app(wiki: ScimmyView):
    svc = wiki.svc
    await svc.send(hire("n1", "N1", "Nora", "Before", "Sales"))
    await svc.drain()
    rid = wiki.remote_id("N1")
    await svc.send(event("n2", "update", "N1", family_name="After"))
    await svc.drain()
    user = wiki.user_by_id(rid)
    assert user["name"]["familyName"] == "After" and user["name"]["givenName"] == "Nora"
    assert user["externalId"] == "N1" and user["active"] is True
    assert wiki.groups("N1") == {"Wiki Readers"}


async def test_leaver_disabled_then_deleted_after_30_days_and_rehire(wiki: ScimmyView):
    """The target file's default mode, disable_then_delete: active=false and no groups on the last
    day (verified by reading the app), DELETE 30 days later; a rehire then gets a new account."""
    svc = wiki.svc
    await svc.send(hire("d1", "D1", "Dana", "Leaver", "Engineering"))
    await svc.drain()
    rid = wiki.remote_id("D1")
    await svc.send(event("d2", "terminate", "D1"))
    await svc.drain()
    user = wiki.user_by_id(rid)
    assert user is not None and user["active"] is False
    assert wiki.groups_of(rid) == set()
    system = revocation(svc)
    assert system["verified"] is True and system["readback"]["enabled"] is False
    clock.advance(timedelta(days=29))
    await svc.drain()
    assert wiki.user_by_id(rid) is not None  # day 29: still there
    clock.advance(timedelta(days=1, minutes=1))
    await svc.drain()
    assert wiki.user_by_id(rid) is None and wiki.accounts("D1") == []
    await svc.send(event("d3", "rehire", "D1", given_name="Dana", family_name="Leaver", department="Engineering"))
    await svc.drain()
    again = wiki.user("D1")
    assert again is not None and again["id"] != rid and again["active"] is True
    assert wiki.groups("D1") == {"Wiki Readers", "Wiki Editors"}


async def test_leaver_disabled_in_disable_mode_and_rehired_into_the_same_account(
        database_url: str, tmp_path: Path, scimmy: RunningServer):
    svc = scimmy_service(tmp_path, database_url, scimmy,
                         scim_overrides={"wiki": {"deprovision": {"mode": "disable"}}})
    wiki = ScimmyView(scimmy, svc)
    try:
        await svc.send(hire("b1", "B1", "Bea", "Disabled", "Engineering"))
        await svc.drain()
        rid = wiki.remote_id("B1")
        await svc.send(event("b2", "terminate", "B1"))
        await svc.drain()
        user = wiki.user_by_id(rid)
        assert user is not None and user["active"] is False
        assert wiki.groups_of(rid) == set()
        assert revocation(svc)["verified"] is True
        assert not ops(svc, "delete_account")  # disable mode never deletes
        clock.advance(timedelta(days=40))
        await svc.drain()
        assert wiki.user_by_id(rid) is not None
        await svc.send(event("b3", "rehire", "B1", given_name="Bea", family_name="Disabled",
                             department="Engineering"))
        await svc.drain()
        user = wiki.user("B1")
        assert user["id"] == rid and user["active"] is True
        assert wiki.groups("B1") == {"Wiki Readers", "Wiki Editors"}
    finally:
        await svc.close()


async def test_leaver_deleted_at_once_in_delete_mode(database_url: str, tmp_path: Path, scimmy: RunningServer):
    svc = scimmy_service(tmp_path, database_url, scimmy,
                         scim_overrides={"wiki": {"deprovision": {"mode": "delete"}}})
    wiki = ScimmyView(scimmy, svc)
    try:
        await svc.send(hire("x1", "X1", "Del", "Ete", "Sales"))
        await svc.drain()
        rid = wiki.remote_id("X1")
        assert rid and wiki.groups("X1") == {"Wiki Readers"}
        await svc.send(event("x2", "terminate", "X1"))
        await svc.drain()
        assert wiki.user_by_id(rid) is None and wiki.accounts("X1") == []
        assert rid not in wiki.member_ids("Wiki Readers")
        system = revocation(svc)
        assert system["verified"] is True and system["readback"]["exists"] is False
        await svc.send(event("x3", "rehire", "X1", given_name="Del", family_name="Ete", department="Sales"))
        await svc.drain()
        user = wiki.user("X1")
        assert user is not None and user["id"] != rid and user["active"] is True
        assert wiki.groups("X1") == {"Wiki Readers"}
    finally:
        await svc.close()


async def test_rehire_within_30_days_reenables_the_same_account(wiki: ScimmyView):
    svc = wiki.svc
    await svc.send(hire("r1", "R1", "Ray", "Return", "Engineering"))
    await svc.drain()
    rid = wiki.remote_id("R1")
    await svc.send(event("r2", "terminate", "R1"))
    await svc.drain()
    assert wiki.user_by_id(rid)["active"] is False
    clock.advance(timedelta(days=10))
    await svc.send(event("r3", "rehire", "R1", given_name="Ray", family_name="Return", department="Engineering"))
    await svc.drain()
    user = wiki.user("R1")
    assert user["id"] == rid and user["active"] is True
    assert wiki.groups("R1") == {"Wiki Readers", "Wiki Editors"}
    clock.advance(timedelta(days=25))
    await svc.drain()
    assert wiki.user_by_id(rid) is not None  # the deferred delete was withdrawn
    assert {o.status for o in ops(svc, "delete_account")} == {"cancelled"}
