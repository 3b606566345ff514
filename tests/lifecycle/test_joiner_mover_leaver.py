"""Joiner, mover, leaver, rehire, leave and return: HR events in, Entra ID (the Graph sandbox,
through the real msgraph-sdk) out, checked against what the sandbox actually holds."""

from __future__ import annotations

from datetime import timedelta

from provisioner.clock import utcnow
from provisioner.evidence import service as evidence
from tests.support import EntraView, event, hire

ENGINEER = {"All Staff", "Employees", "Engineering", "GitHub Users"}


async def test_joiner_gets_account_and_policy_groups(service, entra: EntraView):
    resp = await service.send(hire("e1", "E1", "Ada", "Lovelace", "Engineering", location="DE-BER-1"))
    assert resp.status_code == 202
    await service.drain()
    user = entra.user("E1")
    assert user is not None
    assert user["userPrincipalName"] == "ada.lovelace@example.com"
    assert user["accountEnabled"] is True
    assert user["employeeId"] == "E1"
    assert user["department"] == "Engineering"
    assert entra.groups("E1") == ENGINEER | {"Berlin Office"}
    assert entra.state("E1") == "active"


async def test_joiner_with_taken_name_gets_suffixed_login(service, entra: EntraView):
    service.sandbox.seed_user("grace.hopper@example.com", display_name="Someone Else")
    await service.send(hire("g1", "G1", "Grace", "Hopper", "Finance"))
    await service.drain()
    assert entra.user("G1")["userPrincipalName"] == "grace.hopper2@example.com"


async def test_joiner_with_existing_account_is_linked_not_duplicated(service, entra: EntraView):
    existing = service.sandbox.seed_user("kj@example.com", display_name="K Johnson", employee_id="K1",
                                         account_enabled=False)
    await service.send(hire("k1", "K1", "Katherine", "Johnson", "Finance"))
    await service.drain()
    assert entra.remote_id("K1") == existing
    assert entra.user("K1")["accountEnabled"] is True  # converged after linking
    assert entra.groups("K1") == {"All Staff", "Employees", "Finance"}
    assert await entra.count_users("K1") == 1


async def test_mover_gains_new_groups_and_loses_old_ones(service, entra: EntraView):
    await service.send(hire("m1", "M1", "Alan", "Turing", "Sales"))
    await service.drain()
    assert entra.groups("M1") == {"All Staff", "Employees", "Sales", "Salesforce Users"}
    await service.send(event("m2", "transfer", "M1", utcnow(),
                             department="Engineering", title="Head of Engineering"))
    await service.drain()
    assert entra.groups("M1") == ENGINEER | {"Managers"}
    user = entra.user("M1")
    assert user["department"] == "Engineering"
    assert user["jobTitle"] == "Head of Engineering"


async def test_leaver_is_disabled_sessions_revoked_groups_removed_and_verified(service, entra: EntraView):
    await service.send(hire("l1", "L1", "Grace", "Hopper", "Engineering", job_code="MGR1"))
    await service.drain()
    rid = entra.remote_id("L1")
    # Someone adds the person to a managed group behind the service's back.
    service.sandbox.add_member_directly(service.group_ids["Finance"], rid)
    await service.send(event("l2", "terminate", "L1", utcnow()))
    await service.drain()
    assert entra.user("L1")["accountEnabled"] is False
    assert service.sandbox.sessions_revoked_at(rid) is not None
    assert entra.groups("L1") == set()  # including the one added behind its back (read-back)
    assert entra.state("L1") == "terminated"
    with service.db.transaction() as session:
        records = evidence.revocations(session, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    [record] = records
    assert record["employee_id"] == "L1"
    assert record["all_verified"] is True
    assert record["time_to_revoke_seconds"] is not None
    systems = {s["target"]: s for s in record["systems"]}
    assert set(systems) == {"entra", "wiki"}  # revoked in Entra ID and in the SCIM app, each read back
    system = systems["entra"]
    assert system["readback"]["groups_remaining"] == []
    assert system["readback"]["enabled"] is False
    kinds = sorted(o["kind"] for o in system["operations"])
    assert kinds.count("remove_member") == 6  # 5 granted + 1 found on read-back
    assert {"disable_account", "revoke_sessions"} <= set(kinds)
    wiki = systems["wiki"]
    assert wiki["readback"] == {**wiki["readback"], "exists": True, "enabled": False, "groups_remaining": []}
    assert sorted(o["kind"] for o in wiki["operations"]) == ["disable_account", "remove_member", "remove_member"]


async def test_service_never_removes_memberships_in_unmanaged_groups(service, entra: EntraView):
    unmanaged = service.sandbox.seed_group("Break Glass Admins")
    await service.send(hire("u1", "U1", "Ann", "Other", "Finance"))
    await service.drain()
    rid = entra.remote_id("U1")
    service.sandbox.add_member_directly(unmanaged, rid)
    await service.send(event("u2", "terminate", "U1", utcnow()))
    await service.drain()
    assert rid in service.sandbox.group_member_ids(unmanaged)
    assert entra.groups("U1") == set()


async def test_rehire_reenables_and_regrants(service, entra: EntraView):
    await service.send(hire("r1", "R1", "Alan", "Turing", "Sales"))
    await service.drain()
    await service.send(event("r2", "terminate", "R1", utcnow(), immediate=True))
    await service.drain()
    rid = entra.remote_id("R1")
    assert entra.user("R1")["accountEnabled"] is False
    await service.send(event("r3", "rehire", "R1", utcnow(), given_name="Alan",
                             family_name="Turing", department="Engineering", employment_type="employee"))
    await service.drain()
    assert entra.remote_id("R1") == rid  # the same account, re-enabled
    assert entra.user("R1")["accountEnabled"] is True
    assert entra.groups("R1") == ENGINEER
    assert entra.state("R1") == "active"


async def test_leave_disables_and_return_restores(service, entra: EntraView):
    t0 = utcnow()
    await service.send(hire("a1", "A1", "Con", "Tractor", "Sales", at=t0, employment_type="contractor"))
    await service.drain()
    assert entra.groups("A1") == {"All Staff", "Contractors", "Sales", "Salesforce Users"}
    await service.send(event("a2", "leave", "A1", utcnow()))
    await service.drain()
    assert entra.state("A1") == "on_leave"
    assert entra.user("A1")["accountEnabled"] is False
    assert service.sandbox.sessions_revoked_at(entra.remote_id("A1")) is not None
    # Contractors' policy applies only while active; the others hold through leave.
    assert entra.groups("A1") == {"All Staff", "Sales", "Salesforce Users"}
    await service.send(event("a3", "return", "A1", utcnow()))
    await service.drain()
    assert entra.state("A1") == "active"
    assert entra.user("A1")["accountEnabled"] is True
    assert entra.groups("A1") == {"All Staff", "Contractors", "Sales", "Salesforce Users"}


async def test_hire_then_terminate_before_any_work_grants_nothing(service, entra: EntraView):
    await service.send(hire("h1", "H1", "Brief", "Stay", "Sales"))
    await service.send(event("h2", "terminate", "H1", immediate=True))
    await service.drain()
    assert entra.state("H1") == "terminated"
    assert entra.remote_id("H1") is None  # the joiner's pending work was withdrawn
    assert await entra.count_users("H1") == 0


async def test_rejected_transition_is_recorded_and_visible(service, entra: EntraView):
    await service.send(hire("x1", "X1", "Ann", "Active", "Finance"))
    await service.send(event("x2", "return", "X1", utcnow()))
    await service.drain()
    from provisioner.identities import repository
    from provisioner.intake import repository as events

    with service.db.transaction() as session:
        person = repository.by_employee_id(session, "X1")
        rejected = [t for t in repository.transitions(session, person.id) if not t.accepted]
        assert len(rejected) == 1
        assert "only a person on leave can return" in rejected[0].reason
        assert events.get(session, "x2").status == "rejected"
    assert entra.state("X1") == "active"
