"""Mass-change holds through the HTTP API and the CLI, read back from the Graph sandbox and the
wiki's SCIM server: a snapshot import that would disable 30% of people is held (nothing
disabled) and released (then disabled), a cancel withdraws, individual HR terminations below
the threshold are revoked at once, a reconcile-fix mass removal is held, viewers and auditors
get 403 on decisions, and every decision is in a verifying audit trail."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from provisioner.identities.models import Identity, TargetAccount
from provisioner.planner.service import plan_identity
from provisioner.queue.models import Operation, OpStatus
from provisioner.reconcile.service import reconcile
from provisioner.tokens.service import create_token
from tests.change_control.holds.conftest import audit
from tests.support import EntraView, event, hire
from tests.targets.scim_helpers import WikiView

PEOPLE = [f"P{n}" for n in range(10)]
LEAVERS = ["P7", "P8", "P9"]  # missing from the snapshot: 30% of ten


async def provision(svc) -> None:
    await svc.send([hire(f"h-{e}", e, "Pat", f"Person{e}", "Sales") for e in PEOPLE])
    await svc.drain()


def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "snapshot.csv"
    path.write_text("employee_id,given_name,family_name,department,employment_type\n"
                    + "".join(f"{e},Pat,Person{e},Sales,employee\n" for e in PEOPLE if e not in LEAVERS))
    return path


async def enabled(svc, employees) -> dict[str, tuple[bool, bool]]:
    """(Entra accountEnabled, wiki active) per person, read from the targets."""
    entra, wiki = EntraView(svc), WikiView(svc)
    return {e: (entra.user(e)["accountEnabled"], (await wiki.user(e))["active"]) for e in employees}


async def held_snapshot(svc, cli, tokens, tmp_path: Path) -> list[dict]:
    await provision(svc)
    imported = cli("import", "--snapshot", "--terminate-missing", "--force", str(snapshot(tmp_path)))
    assert imported.exit_code == 0, imported.output
    assert "3 terminate event(s) stored (source snapshot)" in imported.output
    await svc.drain()
    reply = await svc.api.get("/change-control/holds", params={"status": "held"}, headers=tokens["viewer"])
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_snapshot_terminating_30_percent_is_held_then_released(svc, cli, tokens, tmp_path):
    holds = await held_snapshot(svc, cli, tokens, tmp_path)
    assert sorted((h["target"], h["cause"], h["held_people"], h["people"]) for h in holds) == [
        ("entra", "snapshot_import", 3, 3), ("wiki", "snapshot_import", 3, 3)]
    # Nothing disabled in either target, and the people are terminated in the service.
    assert all(state == (True, True) for state in (await enabled(svc, PEOPLE)).values())
    with svc.db.read() as session:
        states = {e: s for e, s in session.execute(select(Identity.employee_id, Identity.state)).all()}
    assert {e for e, s in states.items() if s == "terminated"} == set(LEAVERS)
    # The person's plan and view say their work is held, and by which set.
    plan = cli("plan", "P7")
    assert plan.exit_code == 0 and "disable_account (HELD)" in plan.output and "mass-change hold" in plan.output
    assert "(mass-change hold" in cli("identity", "P7").output
    preview = await svc.api.get("/identities/P7/plan", headers=tokens["approver"])
    assert preview.status_code == 403  # the plan preview stays admin-only
    shown = (await svc.api.get(f"/change-control/holds/{holds[0]['id']}", headers=tokens["auditor"])).json()
    assert {op["employee_id"] for op in shown["operations"]} == set(LEAVERS)
    assert {op["status"] for op in shown["operations"]} == {"held"}
    # Viewers and auditors cannot decide; the answer is problem+json.
    for role in ("viewer", "auditor"):
        for action in ("release", "cancel"):
            denied = await svc.api.post(f"/change-control/holds/{holds[0]['id']}/{action}", headers=tokens[role],
                                        json={"comment": "no"})
            assert denied.status_code == 403, denied.text
            assert denied.headers["content-type"].startswith("application/problem+json")
    assert (await svc.api.post(f"/change-control/holds/{holds[0]['id']}/release")).status_code == 401
    # The approver releases both sets: one over HTTP, one with the CLI.
    entra_hold = next(h for h in holds if h["target"] == "entra")
    wiki_hold = next(h for h in holds if h["target"] == "wiki")
    released = await svc.api.post(f"/change-control/holds/{entra_hold['id']}/release", headers=tokens["approver"],
                                  json={"comment": "the three left on Friday"})
    assert released.status_code == 200, released.text
    assert sorted(released.json()["people"]) == LEAVERS and released.json()["hold"]["status"] == "released"
    again = await svc.api.post(f"/change-control/holds/{entra_hold['id']}/release", headers=tokens["approver"])
    assert again.status_code == 409
    out = cli("holds", "release", str(wiki_hold["id"]), "--comment", "confirmed with HR", "--as", "alice")
    assert out.exit_code == 0, out.output
    await svc.drain()
    after = await enabled(svc, PEOPLE)
    assert {e for e, state in after.items() if state == (False, False)} == set(LEAVERS)
    assert all(after[e] == (True, True) for e in PEOPLE if e not in LEAVERS)
    assert EntraView(svc).groups("P7") == set()
    records = audit(svc, "hold.")
    assert [r["kind"] for r in records] == ["hold.opened", "hold.opened", "hold.released", "hold.released"]
    assert [(r["decided_by"], r["comment"], sorted(r["people"])) for r in records[2:]] == [
        ("token:approver-1", "the three left on Friday", LEAVERS), ("cli:alice", "confirmed with HR", LEAVERS)]
    listed = json.loads(cli("holds", "list", "--json").output)
    assert {h["status"] for h in listed} == {"released"}
    verified = cli("audit", "verify")
    assert verified.exit_code == 0, verified.output


async def test_a_cancelled_hold_withdraws_the_operations(svc, cli, tokens, tmp_path):
    holds = await held_snapshot(svc, cli, tokens, tmp_path)
    # Re-planned by something else meanwhile (the worker converging a person): still held, same set.
    with svc.db.transaction() as session:
        person = session.scalar(select(Identity).where(Identity.employee_id == "P7"))
        plan_identity(session, svc.runtime.ctx, person, trigger="worker:converge", previous_state=person.state)
    await svc.drain()
    with svc.db.read() as session:
        held = session.execute(select(Operation.kind, Operation.hold_id).where(
            Operation.identity_id == person.id, Operation.status == OpStatus.HELD)).all()
    assert {hold_id for _, hold_id in held} == {h["id"] for h in holds}
    assert ("disable_account", next(h["id"] for h in holds if h["target"] == "entra")) in held
    assert all(state == (True, True) for state in (await enabled(svc, PEOPLE)).values())
    for hold in holds:
        out = cli("holds", "cancel", str(hold["id"]), "--comment", "truncated extract")
        assert out.exit_code == 0, out.output
        assert "cancelled" in out.output
    await svc.drain()
    assert all(state == (True, True) for state in (await enabled(svc, PEOPLE)).values())
    with svc.db.read() as session:
        ops = session.scalars(select(Operation).where(Operation.hold_id.in_([h["id"] for h in holds]))).all()
    assert ops and {op.status for op in ops} == {OpStatus.CANCELLED}
    withdrawn = [op for op in ops if "superseded" not in op.last_error]  # P7's first plan was replaced
    assert {op.identity_id for op in withdrawn} == {op.identity_id for op in ops}
    assert all("cancelled by" in op.last_error and "truncated extract" in op.last_error for op in withdrawn)
    shown = json.loads(cli("holds", "show", str(holds[0]["id"]), "--json").output)
    assert shown["status"] == "cancelled" and shown["held_operations"] == 0
    assert [r["kind"] for r in audit(svc, "hold.")][-2:] == ["hold.cancelled", "hold.cancelled"]
    assert cli("holds", "release", str(holds[0]["id"])).exit_code == 2  # decided already
    assert cli("holds", "release", "999999").exit_code == 2
    assert cli("audit", "verify").exit_code == 0


async def test_individual_terminations_below_the_threshold_are_revoked_at_once(svc, tokens):
    await provision(svc)
    # Three terminations, one at a time (the HR threshold is more than 3 people and 20%).
    for e in ("P0", "P1", "P2"):
        await svc.send(event(f"t-{e}", "terminate", e))
        await svc.drain()
        assert (await enabled(svc, [e]))[e] == (False, False)  # revoked at once, never held
    reply = await svc.api.get("/change-control/holds", headers=tokens["viewer"])
    assert reply.json() == []
    # The fourth and fifth in the hour cross it: HR's mass termination is held.
    await svc.send([event("t-P3", "terminate", "P3"), event("t-P4", "terminate", "P4")])
    await svc.drain()
    assert (await enabled(svc, ["P3", "P4"])) == {"P3": (True, True), "P4": (True, True)}
    holds = (await svc.api.get("/change-control/holds", headers=tokens["viewer"])).json()
    assert {(h["cause"], h["held_people"]) for h in holds} == {("hr_termination", 2)}
    metrics = await svc.metrics()
    assert "provisioner_holds_open 2.0" in metrics
    assert 'provisioner_held_operations{cause="hr_termination",target="entra"}' in metrics


async def test_a_reconcile_fix_mass_removal_is_held_then_released(svc, cli, tokens):
    await provision(svc)
    entra = EntraView(svc)
    finance = svc.group_ids["Finance"]
    for e in PEOPLE[:6]:  # someone puts six salespeople into Finance by hand
        svc.sandbox.add_member_directly(finance, entra.remote_id(e))
    rt = svc.runtime
    report = await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    assert report.replanned == 6
    await svc.drain()
    assert all("Finance" in entra.groups(e) for e in PEOPLE[:6])  # held: nobody removed
    [hold] = (await svc.api.get("/change-control/holds", headers=tokens["approver"])).json()
    assert (hold["target"], hold["cause"], hold["held_people"]) == ("entra", "reconcile_fix", 6)
    shown = (await svc.api.get(f"/change-control/holds/{hold['id']}", headers=tokens["approver"])).json()
    assert {(op["kind"], op["group"]) for op in shown["operations"]} == {("remove_member", "Finance")}
    out = cli("holds", "release", str(hold["id"]), "--comment", "Finance is not theirs")
    assert out.exit_code == 0, out.output
    await svc.drain()
    assert not any("Finance" in entra.groups(e) for e in PEOPLE[:6])
    assert svc.sandbox.group_member_ids(finance) == set()
    assert cli("audit", "verify").exit_code == 0


async def test_scim_clients_deactivating_many_people_are_held(svc, tokens):
    """A SCIM client (Okta) of the service's own SCIM endpoint sets active=false for most of its
    users: the disables that follow are held (cause ``scim``), nothing is disabled in Entra ID."""
    with svc.db.transaction() as session:
        scim_token = create_token(session, "okta", {"scim:read", "scim:write"})
    okta = {"Authorization": f"Bearer {scim_token}"}
    ids = []
    for n in range(5):
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"okta{n}@example.com",
                "name": {"givenName": "Okta", "familyName": f"User{n}"}, "externalId": f"okta-{n}", "active": True}
        reply = await svc.api.post("/scim/v2/Users", json=body, headers=okta)
        assert reply.status_code == 201, reply.text
        ids.append(reply.json()["id"])
    await svc.drain()
    with svc.db.read() as session:
        accounts = dict(session.execute(select(TargetAccount.identity_id, TargetAccount.remote_id)
                                        .where(TargetAccount.target == "entra")).all())
    assert set(ids) <= set(accounts)
    assert all(svc.sandbox.user(accounts[i])["accountEnabled"] for i in ids)
    for identity_id in ids[:4]:
        reply = await svc.api.patch(f"/scim/v2/Users/{identity_id}", headers=okta, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]})
        assert reply.status_code == 200, reply.text
    await svc.drain()
    holds = (await svc.api.get("/change-control/holds", headers=tokens["viewer"])).json()
    entra = next(h for h in holds if h["target"] == "entra")
    assert entra["cause"] == "scim" and entra["held_people"] >= 2  # the third and later (more than 2)
    disabled = [i for i in ids[:4] if not svc.sandbox.user(accounts[i])["accountEnabled"]]
    assert len(disabled) == 4 - entra["held_people"]  # the first ones, under the threshold, went out
