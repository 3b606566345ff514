"""Held people and released sets, read back from the Graph sandbox: an HR update about a held
person joins the hold (their removal waits) while a termination goes past it (revoked at once);
releasing over HTTP wakes this process's worker (the operations run long before its next poll);
an operation whose dependency died while it was held is dead-lettered on release, naming it; a
dead removal of a held person is replayed into the hold, not past it."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from provisioner.identities.models import Identity
from provisioner.planner.models import Plan
from provisioner.queue.models import Operation, OpStatus
from provisioner.reconcile.service import reconcile
from tests.change_control.holds.conftest import audit
from tests.change_control.holds.test_holds import LEAVERS, enabled, held_snapshot, provision
from tests.support import EntraView, event


def dead_ops(svc, kind: str, group: str) -> list[Operation]:
    with svc.db.read() as session:
        return list(session.scalars(select(Operation).where(
            Operation.status == OpStatus.DEAD, Operation.kind == kind, Operation.group_key == group)))


def ops_of(svc, employee_id: str, **where) -> list[Operation]:
    with svc.db.read() as session:
        return list(session.scalars(select(Operation).join(Identity, Identity.id == Operation.identity_id).where(
            Identity.employee_id == employee_id, *[getattr(Operation, k) == v for k, v in where.items()])
            .order_by(Operation.id)))


async def test_an_hr_update_of_a_held_person_joins_the_hold_and_a_termination_passes_it(svc, cli, tokens):
    await provision(svc)
    entra = EntraView(svc)
    finance = svc.group_ids["Finance"]
    for e in ("P0", "P1", "P2", "P3"):  # put into Finance by hand: reconcile --fix removes them, held
        svc.sandbox.add_member_directly(finance, entra.remote_id(e))
    rt = svc.runtime
    await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    await svc.drain()
    [hold] = (await svc.api.get("/change-control/holds", headers=tokens["approver"])).json()
    assert (hold["cause"], hold["held_people"]) == ("reconcile_fix", 4)
    # HR changes P0's name (an update) and terminates P1, one event each: below HR's threshold.
    await svc.send([event("u-P0", "update", "P0", family_name="Renamed"),
                    event("t-P1", "terminate", "P1")])
    await svc.drain()
    # The update ran (not destructive), P0's Finance removal is planned again and joins the set.
    assert entra.user("P0")["surname"] == "Renamed"
    assert "Finance" in entra.groups("P0")
    [removal] = ops_of(svc, "P0", status=OpStatus.HELD)
    assert (removal.kind, removal.group_key, removal.hold_id, removal.cause) == \
        ("remove_member", "Finance", hold["id"], "reconcile_fix")
    with svc.db.read() as session:
        assert session.get(Plan, removal.plan_id).trigger == "event:u-P0"
    # The leaver went past it: disabled and out of every group now, nothing of theirs held.
    assert entra.user("P1")["accountEnabled"] is False and entra.groups("P1") == set()
    assert ops_of(svc, "P1", status=OpStatus.HELD) == []
    shown = (await svc.api.get(f"/change-control/holds/{hold['id']}", headers=tokens["viewer"])).json()
    assert shown["held_people"] == 3 and {op["employee_id"] for op in shown["operations"]
                                          if op["status"] == "held"} == {"P0", "P2", "P3"}
    released = await svc.api.post(f"/change-control/holds/{hold['id']}/release", headers=tokens["approver"],
                                  json={"comment": "Finance is not theirs"})
    assert released.status_code == 200, released.text
    await svc.drain()
    assert not any("Finance" in entra.groups(e) for e in ("P0", "P2", "P3"))


async def test_releasing_over_http_wakes_the_worker(svc, cli, tokens, tmp_path):
    holds = await held_snapshot(svc, cli, tokens, tmp_path)
    worker = svc.runtime.worker
    worker.settings = svc.settings.model_copy(update={"worker_poll_seconds": 60.0})  # a slow poll
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop, loops=1))
    try:
        await asyncio.sleep(0.5)  # idle: nothing is ready, the loops wait for a wake or the poll
        assert all(state == (True, True) for state in (await enabled(svc, LEAVERS)).values())
        entra_hold = next(h for h in holds if h["target"] == "entra")
        released = await svc.api.post(f"/change-control/holds/{entra_hold['id']}/release",
                                      headers=tokens["approver"], json={"comment": "they left"})
        assert released.status_code == 200, released.text
        for _ in range(100):  # ten seconds at most, far below the 60 s poll
            if not any(EntraView(svc).user(e)["accountEnabled"] for e in LEAVERS):
                break
            await asyncio.sleep(0.1)
        assert [EntraView(svc).user(e)["accountEnabled"] for e in LEAVERS] == [False, False, False]
    finally:
        svc.runtime.request_stop(stop)
        await asyncio.wait_for(running, 30)


async def test_an_operation_whose_dependency_died_while_held_is_dead_lettered_on_release(svc, cli, tokens,
                                                                                           tmp_path):
    holds = await held_snapshot(svc, cli, tokens, tmp_path)
    entra_hold = next(h for h in holds if h["target"] == "entra")
    # Set up directly: P7's held disable waits on an operation of theirs that was dead-lettered
    # while the set was held (the planner makes such a link when a person's create is under way).
    [disable] = ops_of(svc, "P7", status=OpStatus.HELD, kind="disable_account", target="entra")
    [create] = ops_of(svc, "P7", kind="create_account", target="entra")
    with svc.db.transaction() as session:
        session.get(Operation, create.id).status = OpStatus.DEAD
        session.get(Operation, create.id).last_error = "bad_request: the target refused it"
        session.get(Operation, disable.id).depends_on_id = create.id
    released = await svc.api.post(f"/change-control/holds/{entra_hold['id']}/release", headers=tokens["approver"],
                                  json={"comment": "they left"})
    assert released.status_code == 200, released.text
    await svc.drain()
    with svc.db.read() as session:
        dead = session.get(Operation, disable.id)
    assert dead.status == OpStatus.DEAD
    assert f"operation {create.id} it depends on (create_account on entra) was dead" in dead.last_error
    assert "bad_request: the target refused it" in dead.last_error
    # Nothing of the released set waits for ever; the others ran as planned.
    with svc.db.read() as session:
        assert session.scalars(select(Operation.id).where(Operation.hold_id == entra_hold["id"],
                                                          Operation.status == OpStatus.WAITING)).all() == []
    assert [EntraView(svc).user(e)["accountEnabled"] for e in ("P8", "P9")] == [False, False]
    [record] = [r for r in audit(svc, "hold.released") if r["hold_id"] == entra_hold["id"]]
    assert record["dead_lettered"] == [disable.id]


async def test_a_dead_removal_of_a_held_person_is_replayed_into_the_hold(svc, cli, tokens):
    await provision(svc)
    entra = EntraView(svc)
    finance = svc.group_ids["Finance"]
    svc.sandbox.add_member_directly(finance, entra.remote_id("P0"))
    svc.sandbox.fail_next("DELETE", rf"/groups/{finance}/members/", status=400, code="Request_BadRequest",
                          message="Insufficient privileges to complete the operation.")
    rt = svc.runtime
    await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)  # one person: not held, and it fails
    await svc.drain()
    [dead] = dead_ops(svc, "remove_member", "Finance")
    for e in ("P1", "P2", "P3", "P4"):  # then a wave: held, P0 with them
        svc.sandbox.add_member_directly(finance, entra.remote_id(e))
    await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    await svc.drain()
    [hold] = (await svc.api.get("/change-control/holds", headers=tokens["approver"])).json()
    assert hold["cause"] == "reconcile_fix" and hold["held_people"] == 5
    out = cli("ops", "replay", str(dead.id))
    assert out.exit_code == 0, out.output
    assert f"held in mass-change hold set {hold['id']}" in out.output
    await svc.drain()
    with svc.db.read() as session:
        op = session.get(Operation, dead.id)
        assert (op.status, op.hold_id, op.attempts) == (OpStatus.HELD, hold["id"], 0)
    assert "Finance" in entra.groups("P0")  # read back: the replay did not go past the hold
    released = cli("holds", "release", str(hold["id"]), "--comment", "Finance is not theirs")
    assert released.exit_code == 0, released.output
    await svc.drain()
    assert not any("Finance" in entra.groups(e) for e in ("P0", "P1", "P2", "P3", "P4"))


async def test_work_put_in_a_set_as_it_was_decided_follows_the_decision(svc, cli, tokens):
    """The planner reads a person's open set without locking it (no deadlock with a decision), so
    a plan committing just after a release can leave work ``held`` in a released set: the
    scheduled sweep (Runtime.settle_holds) sends it to the queue, and the removal lands."""
    await provision(svc)
    entra = EntraView(svc)
    finance = svc.group_ids["Finance"]
    for e in ("P0", "P1", "P2", "P3"):
        svc.sandbox.add_member_directly(finance, entra.remote_id(e))
    rt = svc.runtime
    await reconcile(rt.db, rt.ctx, rt.connectors, fix=True)
    await svc.drain()
    [hold] = (await svc.api.get("/change-control/holds", headers=tokens["approver"])).json()
    [late] = ops_of(svc, "P0", status=OpStatus.HELD)
    with svc.db.transaction() as session:  # the race: the set is released, P0's removal still held
        from provisioner.change_control.holds.models import HoldSet, HoldStatus
        session.get(HoldSet, hold["id"]).status = HoldStatus.RELEASED
        for op in session.scalars(select(Operation).where(Operation.hold_id == hold["id"],
                                                          Operation.id != late.id)):
            op.status = OpStatus.PENDING
    await svc.drain()
    assert "Finance" in entra.groups("P0")  # stuck: nothing claims a held operation
    assert await rt.settle_holds() == 1
    await svc.drain()
    assert "Finance" not in entra.groups("P0")
    assert [op.status for op in ops_of(svc, "P0", kind="remove_member", group_key="Finance")][-1] == \
        OpStatus.SUCCEEDED
    assert await rt.settle_holds() == 0
    assert audit(svc, "hold.released_late")
