"""The lifecycle against every third-party SCIM server of tests/servers/registry.py, each a real
process on loopback configured as its own documentation says, reached over real HTTP with the
wiki target's default settings (only base_url and the token changed). Joiner, mover, name
change, a leaver in each deprovision mode and rehires, each read back from the server over HTTP.

One server process per module and server; each test hires people no other test (nor the other
database engine's run) uses, so the tests share the server without seeing each other.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from provisioner.clock import clock
from provisioner.demo.harness import SandboxedService
from tests.servers.launch import RunningServer
from tests.servers.registry import SERVERS
from tests.servers.view import ServerView
from tests.support import EntraView, event, hire
from tests.targets.scim_helpers import FAST


# Write forms an app refuses or ignores, that the connector's per-operation fallback ladders (being
# merged from the scim-ladders branch) are to handle; the end state asserted stays the right one.
@pytest.fixture(scope="module", params=[name for name, _ in SERVERS])
def scim_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    start = dict(SERVERS)[request.param]
    server = start(tmp_path_factory.mktemp(request.param))
    try:
        yield server
    finally:
        server.stop()


def _service(tmp_path, database_url: str, server: RunningServer, **wiki: Any) -> SandboxedService:
    return SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, settings=dict(FAST),
                            scim_servers={"wiki": (server.base_url, server.token)},
                            scim_overrides={"wiki": wiki} if wiki else None)


@pytest.fixture
async def svc(tmp_path, database_url, scim_server) -> AsyncIterator[SandboxedService]:
    """The service with the wiki target's default settings (deprovision: disable_then_delete, 30 days)."""
    service = _service(tmp_path, database_url, scim_server)
    try:
        yield service
    finally:
        await service.close()


def person() -> tuple[str, str]:
    """An employee id and a family name nobody else in this server has (so is the login)."""
    tag = "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
    return f"S-{tag}", "Test" + tag


async def _hire(svc: SandboxedService, emp: str, given: str, family: str, department: str) -> None:
    await svc.send(hire(f"{emp}-hire", emp, given, family, department))
    await svc.drain()


def assert_active_account(view: ServerView, svc: SandboxedService, emp: str, given: str, family: str) -> dict:
    user = view.user(emp)
    assert user is not None, f"no account for {emp} in {view.server.name}"
    login = EntraView(svc).user(emp)["userPrincipalName"]
    assert user["userName"].lower() == login.lower()
    assert user["externalId"] == emp
    assert user["active"] is True
    assert user["name"]["givenName"] == given and user["name"]["familyName"] == family
    assert login.lower() in {str(e.get("value", "")).lower() for e in user.get("emails") or []}
    return user


async def test_joiner_gets_an_account_with_attributes_and_groups(svc, scim_server):
    view = ServerView(scim_server, svc)
    emp, family = person()
    await _hire(svc, emp, "Ada", family, "Engineering")
    assert_active_account(view, svc, emp, "Ada", family)
    assert view.groups(emp) == {"Wiki Readers", "Wiki Editors"}
    # A second joiner finds the groups the first one created (by name, whatever the app's filters).
    emp2, family2 = person()
    await _hire(svc, emp2, "Bea", family2, "Sales")
    assert_active_account(view, svc, emp2, "Bea", family2)
    assert view.groups(emp2) == {"Wiki Readers"}
    assert len([n for n in view.groups_by_name() if n in ("Wiki Readers", "Wiki Editors")]) == 2


async def test_mover_gains_then_loses_a_group(svc, scim_server):
    view = ServerView(scim_server, svc)
    emp, family = person()
    await _hire(svc, emp, "Max", family, "Sales")
    rid = view.remote_id(emp)
    assert view.groups(emp) == {"Wiki Readers"}
    await svc.send(event(f"{emp}-to-eng", "update", emp, department="Engineering"))
    await svc.drain()
    assert view.remote_id(emp) == rid
    assert view.groups(emp) == {"Wiki Readers", "Wiki Editors"}  # added
    await svc.send(event(f"{emp}-to-sales", "update", emp, department="Sales"))
    await svc.drain()
    assert view.groups(emp) == {"Wiki Readers"}, "mover: Wiki Editors removed"


async def test_name_change_reaches_the_app(svc, scim_server):
    view = ServerView(scim_server, svc)
    emp, family = person()
    await _hire(svc, emp, "Nia", family, "Sales")
    rid = view.remote_id(emp)
    await svc.send(event(f"{emp}-rename", "update", emp, family_name=family + "x"))
    await svc.drain()
    user = view.user(emp)
    assert user is not None and str(user["id"]) == rid
    assert user["name"]["givenName"] == "Nia"
    assert user["name"]["familyName"] == family + "x", "name change: familyName updated"


async def test_leaver_disabled_keeps_a_disabled_account_without_groups(tmp_path, database_url, scim_server):
    svc = _service(tmp_path, database_url, scim_server, deprovision={"mode": "disable"})
    try:
        view = ServerView(scim_server, svc)
        emp, family = person()
        await _hire(svc, emp, "Dis", family, "Engineering")
        rid = view.remote_id(emp)
        assert view.groups(emp) == {"Wiki Readers", "Wiki Editors"}
        await svc.send(event(f"{emp}-leave", "terminate", emp))
        await svc.drain()
        status, user = view.get_user(rid)
        assert status == 200 and user["active"] is False
        assert view.groups_holding(rid) == set(), "leaver (disable): removed from the groups"
        clock.advance(timedelta(days=60))
        await svc.drain()
        status, user = view.get_user(rid)
        assert status == 200 and user["active"] is False  # never deleted in this mode
        # Rehire: the same account, active again, groups back.
        await svc.send(event(f"{emp}-back", "rehire", emp, given_name="Dis", family_name=family,
                             department="Engineering"))
        await svc.drain()
        assert view.remote_id(emp) == rid
        assert_active_account(view, svc, emp, "Dis", family)
        assert view.groups(emp) == {"Wiki Readers", "Wiki Editors"}
    finally:
        await svc.close()


async def test_leaver_deleted_at_once_then_rehired_into_a_new_account(tmp_path, database_url, scim_server):
    svc = _service(tmp_path, database_url, scim_server, deprovision={"mode": "delete"})
    try:
        view = ServerView(scim_server, svc)
        emp, family = person()
        await _hire(svc, emp, "Del", family, "Engineering")
        rid = view.remote_id(emp)
        assert rid and view.groups(emp) == {"Wiki Readers", "Wiki Editors"}
        await svc.send(event(f"{emp}-leave", "terminate", emp))
        await svc.drain()
        assert view.get_user(rid)[0] == 404
        assert view.groups_holding(rid) == set()
        await svc.send(event(f"{emp}-back", "rehire", emp, given_name="Del", family_name=family,
                             department="Engineering"))
        await svc.drain()
        new = view.remote_id(emp)
        assert new is not None and new != rid
        assert_active_account(view, svc, emp, "Del", family)
        assert view.groups(emp) == {"Wiki Readers", "Wiki Editors"}, "rehire after delete: groups back"
    finally:
        await svc.close()


async def test_leaver_disabled_then_deleted_after_the_days(svc, scim_server):
    view = ServerView(scim_server, svc)
    emp, family = person()
    await _hire(svc, emp, "Tem", family, "Engineering")
    rid = view.remote_id(emp)
    await svc.send(event(f"{emp}-leave", "terminate", emp))
    await svc.drain()
    status, user = view.get_user(rid)
    assert status == 200 and user["active"] is False
    assert view.groups_holding(rid) == set(), "leaver (disable_then_delete): removed from the groups"
    clock.advance(timedelta(days=29))
    await svc.drain()
    assert view.get_user(rid)[0] == 200  # day 29: still there
    clock.advance(timedelta(days=1, minutes=1))
    await svc.drain()
    assert view.get_user(rid)[0] == 404


async def test_rehire_within_the_days_reenables_the_same_account(svc, scim_server):
    view = ServerView(scim_server, svc)
    emp, family = person()
    await _hire(svc, emp, "Ray", family, "Engineering")
    rid = view.remote_id(emp)
    await svc.send(event(f"{emp}-leave", "terminate", emp))
    await svc.drain()
    assert view.get_user(rid)[1]["active"] is False
    assert view.groups_holding(rid) == set(), "leaver: removed from the groups"
    clock.advance(timedelta(days=10))
    await svc.send(event(f"{emp}-back", "rehire", emp, given_name="Ray", family_name=family,
                         department="Engineering"))
    await svc.drain()
    assert view.remote_id(emp) == rid
    assert_active_account(view, svc, emp, "Ray", family)
    assert view.groups(emp) == {"Wiki Readers", "Wiki Editors"}
    clock.advance(timedelta(days=25))
    await svc.drain()
    assert view.get_user(rid)[0] == 200  # the deferred delete was withdrawn
