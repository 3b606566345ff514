"""Joiner, mover, leaver (both deprovision modes), rehire and linking, through the whole service
into the real third-party scim2-server (in-process), with Bulk on and off."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from provisioner.clock import clock, utcnow
from provisioner.evidence import service as evidence
from provisioner.queue.models import Operation
from tests.support import EntraView, event, hire
from tests.targets.scim_helpers import WikiView, hired_then_terminated, scim_service

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture(params=["bulk", "no-bulk"])
async def wiki_service(request, database_url, tmp_path):
    """The service with the wiki's scim2-server offering Bulk, or not."""
    svc, log = scim_service(tmp_path, database_url, scim_options={"wiki": {"bulk": request.param == "bulk"}})
    svc.request_log = log
    try:
        yield svc
    finally:
        await svc.close()


async def test_joiner_gets_an_account_with_mapped_attributes_and_policy_groups(wiki_service):
    svc, wiki = wiki_service, WikiView(wiki_service)
    await svc.send(hire("m0", "M0", "Mary", "Boss", "Engineering", cost_center="CC-7"))
    await svc.drain()
    await svc.send(hire("j1", "J1", "Ada", "Lovelace", "Engineering", cost_center="CC-7",
                        title="Engineer", manager_employee_id="M0"))
    await svc.drain()
    user = await wiki.user("J1")
    entra_login = EntraView(svc).user("J1")["userPrincipalName"]
    assert user["userName"] == entra_login == "ada.lovelace@example.com"  # the login Entra ID settled on
    assert user["active"] is True
    assert user["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert user["title"] == "Engineer"
    assert user["emails"] == [{"value": "ada.lovelace@example.com", "type": "work", "primary": True}]
    ext = user[ENTERPRISE]
    assert ext["employeeNumber"] == "J1" and ext["department"] == "Engineering" and ext["costCenter"] == "CC-7"
    assert ext["manager"]["value"] == wiki.remote_id("M0")  # the manager's account in the wiki
    assert await wiki.groups("J1") == {"Wiki Readers", "Wiki Editors"}
    counts = svc.request_log.counts()
    if svc.scim["wiki"].app.provider.config.bulk.supported:
        assert counts[("POST", "Bulk")] >= 2 and counts[("POST", "Users")] == 0
        assert counts[("PATCH", "Groups")] == 0  # memberships travelled inside Bulk requests
    else:
        assert counts[("POST", "Bulk")] == 0 and counts[("POST", "Users")] == 2
        assert counts[("PATCH", "Groups")] >= 2


async def test_mover_updates_attributes_and_swaps_groups(wiki_service):
    svc, wiki = wiki_service, WikiView(wiki_service)
    await svc.send(hire("v1", "V1", "Max", "Mover", "Engineering"))
    await svc.drain()
    rid = wiki.remote_id("V1")
    await svc.send(event("v2", "update", "V1", department="Sales", title="Account Executive"))
    await svc.drain()
    user = await wiki.user("V1")
    assert user["id"] == rid
    assert user[ENTERPRISE]["department"] == "Sales" and user["title"] == "Account Executive"
    assert await wiki.groups("V1") == {"Wiki Readers"}


async def test_leaver_disabled_then_deleted_after_30_days_with_evidence(wiki_service):
    svc, wiki = wiki_service, WikiView(wiki_service)
    rid = await hired_then_terminated(svc, wiki, "D1", "Dana", "Leaver", "Engineering")
    user = await wiki.user("D1")
    assert user["id"] == rid and user["active"] is False
    assert await wiki.groups("D1") == set()
    with svc.db.transaction() as session:
        [record] = evidence.revocations(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
        deferred = session.scalars(select(Operation).where(Operation.target == "wiki",
                                                           Operation.kind == "delete_account")).one()
    systems = {s["target"]: s for s in record["systems"]}
    assert systems["wiki"]["verified"] is True
    assert systems["wiki"]["readback"]["enabled"] is False
    assert deferred.status == "pending"
    assert timedelta(days=29, hours=23) < deferred.next_attempt_at - utcnow() <= timedelta(days=30)
    clock.advance(timedelta(days=29))
    await svc.drain()
    assert await wiki.user("D1") is not None  # day 29: still there
    clock.advance(timedelta(days=1, minutes=1))
    await svc.drain()
    assert await wiki.accounts("D1") == []
    assert wiki.remote_id("D1") is None


async def test_leaver_deleted_at_once_in_delete_mode(database_url, tmp_path):
    svc, _ = scim_service(tmp_path, database_url, scim_overrides={"wiki": {"deprovision": {"mode": "delete"}}})
    try:
        wiki = WikiView(svc)
        await svc.send(hire("x1", "X1", "Del", "Ete", "Sales"))
        await svc.drain()
        rid = wiki.remote_id("X1")
        assert rid and await wiki.groups("X1") == {"Wiki Readers"}
        await svc.send(event("x2", "terminate", "X1"))
        await svc.drain()
        assert await wiki.accounts("X1") == []
        assert rid not in await svc.scim["wiki"].group_members("Wiki Readers")
        with svc.db.transaction() as session:
            [record] = evidence.revocations(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
        wiki_system = {s["target"]: s for s in record["systems"]}["wiki"]
        assert wiki_system["verified"] is True
        assert wiki_system["readback"]["exists"] is False and wiki_system["readback"]["account_id"] == rid
        assert {o["kind"] for o in wiki_system["operations"]} == {"delete_account", "remove_member"}
        # A rehire after deletion gets a new account.
        await svc.send(event("x3", "rehire", "X1", given_name="Del", family_name="Ete", department="Sales"))
        await svc.drain()
        user = await wiki.user("X1")
        assert user is not None and user["id"] != rid and user["active"] is True
        assert await wiki.groups("X1") == {"Wiki Readers"}
    finally:
        await svc.close()


async def test_rehire_within_30_days_reenables_the_same_account_and_cancels_the_delete(wiki_service):
    svc, wiki = wiki_service, WikiView(wiki_service)
    rid = await hired_then_terminated(svc, wiki, "R1", "Ray", "Return", "Engineering")
    clock.advance(timedelta(days=10))
    await svc.send(event("r3", "rehire", "R1", given_name="Ray", family_name="Return", department="Engineering"))
    await svc.drain()
    user = await wiki.user("R1")
    assert user["id"] == rid and user["active"] is True
    assert await wiki.groups("R1") == {"Wiki Readers", "Wiki Editors"}
    clock.advance(timedelta(days=25))
    await svc.drain()
    assert (await wiki.user("R1"))["id"] == rid  # the deferred delete was withdrawn
    with svc.db.transaction() as session:
        kinds = {(o.kind, o.status) for o in session.scalars(select(Operation).where(Operation.target == "wiki"))}
    assert ("delete_account", "cancelled") in kinds and ("delete_account", "succeeded") not in kinds


async def test_existing_account_is_linked_not_duplicated(wiki_service):
    svc, wiki = wiki_service, WikiView(wiki_service)
    existing = await svc.scim["wiki"].add("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Legacy.Person@example.com",
        "externalId": "L1", "active": False})
    await svc.send(hire("l1", "L1", "Legacy", "Person", "Engineering"))
    await svc.drain()
    assert [u["id"] for u in await wiki.accounts("L1")] == [existing["id"]]
    assert wiki.remote_id("L1") == existing["id"]
    user = await wiki.user("L1")
    assert user["active"] is True  # converged after linking: enabled, attributes and groups
    assert user[ENTERPRISE]["department"] == "Engineering"
    assert await wiki.groups("L1") == {"Wiki Readers", "Wiki Editors"}
    assert len(await svc.scim["wiki"].users()) == 1  # linked, no second account


async def test_account_found_by_user_name_without_external_id_is_linked(wiki_service):
    svc, wiki = wiki_service, WikiView(wiki_service)
    existing = await svc.scim["wiki"].add("Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ULF.NAME@example.com"})
    await svc.send(hire("u1", "U1", "Ulf", "Name", "Sales"))
    await svc.drain()
    assert wiki.remote_id("U1") == existing["id"]
    assert (await wiki.user("U1"))["externalId"] == "U1"  # the update wrote the employee id


async def test_conflict_on_create_looks_up_and_links(wiki_service):
    """The app created the person itself between our lookup and our create (JIT sign-in):
    POST /Users answers 409 uniqueness, and the worker links instead of failing."""
    svc, wiki = wiki_service, WikiView(wiki_service)
    raced: list[str] = []

    async def app_creates_first(request):
        body = request.content.decode()
        if request.method == "POST" and '"externalId":"C1"' in body and not raced:
            made = await svc.scim["wiki"].add("Users", {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "cleo.conflict@example.com", "externalId": "C1"})
            raced.append(made["id"])

    svc.request_log.before = app_creates_first
    await svc.send(hire("c1", "C1", "Cleo", "Conflict", "Sales"))
    await svc.drain()
    assert raced and [u["id"] for u in await wiki.accounts("C1")] == raced
    assert wiki.remote_id("C1") == raced[0]
    assert await wiki.groups("C1") == {"Wiki Readers"}
    with svc.db.transaction() as session:
        create = session.scalars(select(Operation).where(Operation.target == "wiki",
                                                         Operation.kind == "create_account")).one()
    assert create.status == "succeeded" and "linked" in create.last_error


async def test_user_name_held_by_someone_else_is_dead_lettered_with_the_reason(wiki_service):
    svc, wiki = wiki_service, WikiView(wiki_service)
    await svc.scim["wiki"].add("Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                         "userName": "sam.same@example.com", "externalId": "OTHER-9"})
    await svc.send(hire("s1", "S1", "Sam", "Same", "Sales"))
    await svc.drain()
    assert await wiki.accounts("S1") == []
    with svc.db.transaction() as session:
        create = session.scalars(select(Operation).where(Operation.target == "wiki",
                                                         Operation.kind == "create_account")).one()
        grants = session.scalars(select(Operation).where(Operation.target == "wiki",
                                                         Operation.kind == "add_member")).all()
    assert create.status == "dead"
    assert "409" in create.last_error and "belongs to someone else" in create.last_error
    assert grants and all(g.status == "dead" for g in grants)  # waiting on it, not waiting forever
    assert EntraView(svc).user("S1")["accountEnabled"] is True  # Entra ID is not held back


async def test_drift_in_the_scim_app_is_reported_and_fixed(wiki_service):
    from provisioner.reconcile.service import reconcile

    svc, wiki = wiki_service, WikiView(wiki_service)
    await svc.send([hire("z1", "Z1", "Zoe", "Drift", "Sales"), hire("z2", "Z2", "Zed", "Drift", "Sales"),
                    hire("z3", "Z3", "Zia", "Steady", "Engineering")])
    await svc.drain()
    server = svc.scim["wiki"]
    editors = await server.group("Wiki Editors")
    async with server.client() as client:  # an app admin grants editing and disables someone
        await client.patch(f"/Groups/{editors['id']}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": wiki.remote_id("Z1")}]}]})
        await client.patch(f"/Users/{wiki.remote_id('Z2')}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
    report = await reconcile(svc.db, svc.runtime.ctx, svc.runtime.connectors, fix=False)
    found = {(d.target, d.group, d.kind, d.employee_id) for d in report.drift}
    assert found == {("wiki", "Wiki Editors", "member_added_elsewhere", "Z1"),
                     ("wiki", None, "account_disabled_elsewhere", "Z2")}
    report = await reconcile(svc.db, svc.runtime.ctx, svc.runtime.connectors, fix=True)
    assert report.replanned == 2
    await svc.drain()
    assert await wiki.groups("Z1") == {"Wiki Readers"}
    assert (await wiki.user("Z2"))["active"] is True
    assert (await reconcile(svc.db, svc.runtime.ctx, svc.runtime.connectors, fix=False)).drift == []


async def test_a_throttled_scim_app_does_not_hold_back_the_entra_read_back(wiki_service):
    from provisioner.sandbox.scim.faults import FaultTransport

    svc = wiki_service
    await svc.send(hire("t1", "T1", "Tess", "Throttle", "Sales"))
    await svc.drain()
    faults = FaultTransport(svc.request_log.inner)
    svc.request_log.inner = faults
    faults.script("429", times=1, method="POST" if svc.scim["wiki"].app.provider.config.bulk.supported
                  else "PATCH", retry_after=3600)
    await svc.send(event("t2", "terminate", "T1"))
    await svc.drain()
    assert faults.injected["429"] == 1
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # Entra ID's own retries (a busy CI host) may take a moment; the wiki's take an hour
        with svc.db.transaction() as session:
            [record] = evidence.revocations(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
            waiting = session.scalars(select(Operation).where(Operation.target == "wiki",
                                                              Operation.status == "pending")).all()
            entra_ops = [(op.kind, op.status, op.attempts, op.last_error) for op in session.scalars(
                select(Operation).where(Operation.target == "entra").order_by(Operation.id))]
        systems = {s["target"]: s for s in record["systems"]}
        if systems["entra"]["verified"] or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
        await svc.drain()
    # read back while the wiki waits out its Retry-After
    assert systems["entra"]["verified"] is True, (systems["entra"], entra_ops)
    assert systems["wiki"]["verified"] is False
    assert waiting and min(op.next_attempt_at for op in waiting) > utcnow() + timedelta(minutes=59)
