"""What only scimmy among the servers tested takes (Node.js: scimmy + scimmy-routers on express,
a real process on loopback): the enterprise extension and the manager, on joiners and a mover,
read back from the app over HTTP. The lifecycle itself (name change, each deprovision mode,
rehires) runs against every server in tests/targets/test_scim_servers.py; the fixture here also
serves tests/targets/test_scim_scimmy_overlap.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provisioner.clock import utcnow
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
