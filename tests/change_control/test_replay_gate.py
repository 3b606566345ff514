"""Dead-letter replays go through change control, from the CLI and the console alike, read back
from the Graph sandbox: a dead Finance grant whose approval ended is not replayed (the refusal
names the request to decide) until an approver decides. (A replay into a mass-change hold:
tests/change_control/holds/test_hold_followups.py.)"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from provisioner.clock import clock, utcnow
from provisioner.queue.models import Operation, OpStatus
from tests.change_control.test_approvals import pending
from tests.change_control.test_sod_cli import invoke
from tests.console.conftest import ConsoleClient, bearer
from tests.support import hire


def dead_ops(svc, kind: str, group: str) -> list[Operation]:
    with svc.db.read() as session:
        return list(session.scalars(select(Operation).where(
            Operation.status == OpStatus.DEAD, Operation.kind == kind, Operation.group_key == group)))


async def test_a_dead_grant_whose_approval_ended_is_not_replayed(cli_env, tokens, graph):
    cc = cli_env
    await cc.send(hire("h-f8", "F8", "Flo", "Ledger", "Finance"))
    await cc.drain()
    [request] = await pending(cc, tokens["look"], "F8")
    finance = cc.group_ids["Finance"]
    cc.sandbox.fail_next("*", rf"/groups/{finance}", status=400, code="Request_BadRequest",
                         message="Invalid object identifier.")
    ok = await cc.api.post(f"/approvals/{request['id']}/approve", headers=tokens["alice"],
                           json={"comment": "quarter close", "expires_at": (utcnow() + timedelta(hours=1)).isoformat()})
    assert ok.status_code == 200, ok.text
    await cc.drain()
    [dead] = dead_ops(cc, "add_member", "Finance")
    assert "Finance" not in graph.groups("F8")
    clock.advance(timedelta(hours=2))  # the approval ends; a new request waits for an approver
    await cc.drain()
    [again] = await pending(cc, tokens["look"], "F8")
    refused = invoke("ops", "replay", str(dead.id))
    assert refused.exit_code == 2, refused.output
    assert f"waits for an approver (request {again['id']}" in refused.output
    console = ConsoleClient(cc.app)
    try:
        await console.sign_in(bearer(tokens["bob"]))
        page = await console.post("/console/dead-letters/replay", {"ids": str(dead.id)})
        assert page.status_code == 200 and f"operation {dead.id} adds F8 to Finance" in page.text, page.text
    finally:
        await console.http.aclose()
    everything = invoke("ops", "replay", "--all")
    assert everything.exit_code == 1 and f"request {again['id']}" in everything.output, everything.output
    await cc.drain()
    assert "Finance" not in graph.groups("F8")  # read back: nothing bypassed the approver
    assert [op.id for op in dead_ops(cc, "add_member", "Finance")] == [dead.id]
    # Once approved, the planner sends the grant; the replay is then let through too.
    assert invoke("approvals", "approve", str(again["id"]), "--comment", "renewed", "--by", "dave").exit_code == 0
    await cc.drain()
    assert "Finance" in graph.groups("F8")
    replayed = invoke("ops", "replay", str(dead.id))
    assert replayed.exit_code == 0 and f"replaying 1 operation(s): {dead.id}" in replayed.output
