"""Who decided, in one form whatever the channel (``token:``, ``console:``, ``cli:`` + name), and
separation of duties across channels: a token that asked for a grant cannot approve it from the
console or the CLI under the same name either; another approver can, and lands it (read back
from the Graph sandbox)."""

from __future__ import annotations

from datetime import timedelta

from provisioner.clock import clock, utcnow
from tests.change_control.test_approvals import pending
from tests.change_control.test_sod_cli import invoke
from tests.console.conftest import ConsoleClient, bearer
from tests.support import hire


async def test_a_requester_cannot_approve_their_own_request_through_another_channel(cli_env, tokens, graph):
    cc = cli_env
    await cc.send(hire("h-f7", "F7", "Fred", "Ledger", "Finance"))
    await cc.drain()
    [first] = await pending(cc, tokens["look"], "F7")
    ok = await cc.api.post(f"/approvals/{first['id']}/approve", headers=tokens["alice"],
                           json={"comment": "quarter close", "expires_at": (utcnow() + timedelta(hours=1)).isoformat()})
    assert ok.status_code == 200 and ok.json()["decided_by"] == "token:alice", ok.text
    await cc.drain()
    clock.advance(timedelta(hours=2))
    # root (an admin token) asks for the re-plan after the expiry: the new request is root's own.
    assert (await cc.api.post("/identities/F7/replan", headers=tokens["root"])).status_code == 200
    await cc.drain()
    assert "Finance" not in graph.groups("F7")
    [again] = await pending(cc, tokens["look"], "F7")
    assert again["requested_by"] == "token:root"
    # root signs in to the console with that token: still root, refused.
    console = ConsoleClient(cc.app)
    try:
        await console.sign_in(bearer(tokens["root"]))
        page = await console.post("/console/approvals/decide",
                                  {"ids": str(again["id"]), "decision": "approve", "comment": "mine"})
        assert page.status_code == 200 and "another approver must decide it" in page.text, page.text
    finally:
        await console.http.aclose()
    # ... and from the CLI as root.
    cli = invoke("approvals", "approve", str(again["id"]), "--comment", "mine", "--by", "root")
    assert cli.exit_code == 1 and "requested by token:root: another approver" in cli.output, cli.output
    assert [r["id"] for r in await pending(cc, tokens["look"], "F7")] == [again["id"]]
    # Another approver, from the CLI: recorded as cli:<name>, and the grant lands.
    assert invoke("approvals", "approve", str(again["id"]), "--comment", "renewed", "--by", "dave").exit_code == 0
    await cc.drain()
    assert "Finance" in graph.groups("F7")
    shown = (await cc.api.get(f"/approvals/{again['id']}", headers=tokens["look"])).json()
    assert (shown["status"], shown["requested_by"], shown["decided_by"]) == ("approved", "token:root", "cli:dave")
    too_long = invoke("approvals", "approve", str(first["id"]), "--comment", "x", "--by", "x" * 200)
    assert too_long.exit_code == 2 and "--by needs a name" in too_long.output
